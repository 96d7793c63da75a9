// Field types that know nothing of ts-rs (std's, serde_json's, and a struct with only serde
// derives) travel, and round-trip through encoded frames. `tests/macro_foreign_types.rs`
// includes this file to run `main` and to type-check its TypeScript.

use std::net::IpAddr;
use std::time::Duration;

use omni::{ClientFrame, ServerFrame};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Item {
    pub id: u32,
    pub name: String,
}

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Inventory {
    #[client]
    Add(Item),
    #[client]
    Ping { from: IpAddr, after: Duration },
    #[server]
    Changed(serde_json::Value),
    #[server]
    Listed(Vec<Item>, Option<Item>),
    #[server]
    Noted { id: u32, note: Option<Item> },
}

fn item() -> Item {
    Item {
        id: 7,
        name: "lamp".into(),
    }
}

fn client_round_trip(msg: InventoryFromClient, json: &str) {
    let frame = ClientFrame::msg(msg);
    let text = frame.encode().unwrap();
    assert_eq!(text, format!(r#"{{"type":"msg","payload":{json}}}"#));
    assert_eq!(ClientFrame::decode(text.as_bytes()).unwrap(), frame);
}

fn server_round_trip(msg: InventoryFromServer, json: &str) {
    let frame = ServerFrame::Push {
        payload: msg,
        topic: None,
        id: None,
    };
    let text = frame.encode().unwrap();
    assert_eq!(text, format!(r#"{{"type":"push","payload":{json}}}"#));
    assert_eq!(ServerFrame::decode(text.as_bytes()).unwrap(), frame);
}

fn main() {
    client_round_trip(
        InventoryFromClient::Add(item()),
        r#"{"kind":"Add","data":{"id":7,"name":"lamp"}}"#,
    );
    client_round_trip(
        InventoryFromClient::Ping {
            from: IpAddr::from([127, 0, 0, 1]),
            after: Duration::from_millis(1500),
        },
        r#"{"kind":"Ping","data":{"from":"127.0.0.1","after":{"secs":1,"nanos":500000000}}}"#,
    );
    server_round_trip(
        InventoryFromServer::Changed(serde_json::json!({ "stock": [1, 2] })),
        r#"{"kind":"Changed","data":{"stock":[1,2]}}"#,
    );
    server_round_trip(
        InventoryFromServer::Listed(vec![item()], None),
        r#"{"kind":"Listed","data":[[{"id":7,"name":"lamp"}],null]}"#,
    );
    server_round_trip(
        InventoryFromServer::Noted {
            id: 1,
            note: Some(item()),
        },
        r#"{"kind":"Noted","data":{"id":1,"note":{"id":7,"name":"lamp"}}}"#,
    );
    // An absent `Option` field still reads as `None`, as serde's own derive reads it.
    let absent = br#"{"type":"push","payload":{"kind":"Noted","data":{"id":1}}}"#;
    assert_eq!(
        ServerFrame::decode(absent).unwrap(),
        ServerFrame::Push {
            payload: InventoryFromServer::Noted { id: 1, note: None },
            topic: None,
            id: None,
        }
    );
}
