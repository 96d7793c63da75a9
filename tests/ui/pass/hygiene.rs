//! The generated code names only absolute paths: it compiles without the prelude, with
//! warnings denied, and with look-alikes of prelude items in scope.
#![no_implicit_prelude]
#![deny(warnings)]

#[allow(dead_code)]
struct Result;
#[allow(dead_code)]
struct Ok;
#[allow(dead_code)]
struct Err;
#[allow(dead_code)]
struct Vec;
#[allow(dead_code)]
struct String;
#[allow(dead_code)]
struct Box;
#[allow(dead_code)]
struct Option;
#[allow(dead_code)]
struct Some;
#[allow(dead_code)]
struct None;
#[allow(dead_code)]
trait Future {}
#[allow(dead_code)]
trait Send {}
#[allow(dead_code)]
trait From {}
#[allow(dead_code)]
mod serde {}
#[allow(dead_code)]
mod ts_rs {}
#[allow(dead_code)]
mod core {}

#[::omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Local(::std::string::String),
    #[client]
    Say(::std::string::String),
    #[client]
    Move { x: i32, y: i32 },
    #[client]
    Ping,
    #[server]
    Said(::std::vec::Vec<::std::string::String>),
    #[server]
    Pair(u8, ::std::option::Option<u64>),
}

struct Handler;

impl MsgHandler for Handler {
    async fn say(
        &mut self,
        cx: &mut ::omni::Context<Msg>,
        value: ::std::string::String,
    ) -> ::omni::HandlerResult {
        cx.send(MsgFromServer::Said(::std::vec![value]));
        ::std::result::Result::Ok(())
    }

    async fn r#move(&mut self, _: &mut ::omni::Context<Msg>, _: i32, _: i32) -> ::omni::HandlerResult {
        ::std::result::Result::Ok(())
    }

    async fn ping(&mut self, _: &mut ::omni::Context<Msg>) -> ::omni::HandlerResult {
        ::std::result::Result::Ok(())
    }
}

fn main() {
    let _ = Handler;
    let _ = <Msg as ::omni::Protocol>::version();
}
