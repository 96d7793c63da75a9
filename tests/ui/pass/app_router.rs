// An app with its own state mounts the endpoint's and the mux's routers, answers JSON with
// axum's `Json` taken through omni, and derives serde for its payload through omni's serde.

use omni::axum::extract::State;
use omni::axum::routing::get;
use omni::axum::{Json, Router};
use omni::serde::{Deserialize, Serialize};
use omni::server::{Endpoint, Mux};
use omni::token::Keys;
use omni::{Context, HandlerResult};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "omni::serde")]
pub struct Todo {
    pub id: u64,
    pub title: String,
}

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Board {
    #[client]
    Add(Todo),
    #[server]
    Added(Todo),
}

struct Handler;

impl BoardHandler for Handler {
    async fn add(&mut self, cx: &mut Context<Board>, todo: Todo) -> HandlerResult {
        cx.send(BoardFromServer::Added(todo));
        Ok(())
    }
}

#[derive(Clone)]
struct AppState {
    todos: std::sync::Arc<Vec<Todo>>,
}

async fn list(State(app): State<AppState>) -> Json<Vec<Todo>> {
    Json(app.todos.to_vec())
}

fn main() {
    let endpoint = Endpoint::<Board, _>::new(|| Handler);
    let mux = Mux::builder(Keys::new(b"a key of thirty-two bytes at the very least").unwrap())
        .module("board", &endpoint)
        .build();
    let _app: Router = Router::new()
        .route("/todos", get(list))
        .nest("/omni", endpoint.router().merge(mux.router()))
        .with_state(AppState {
            todos: std::sync::Arc::new(Vec::new()),
        });
}
