//! Variants whose handler method would be a keyword, and a field named like the context.

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    #[client]
    Move,
    #[client]
    Type(String),
    #[client]
    Super,
    #[client]
    Point { cx: f32, cy: f32 },
    #[server]
    Done,
}

struct Handler;

impl MsgHandler for Handler {
    async fn r#move(&mut self, _: &mut omni::Context<Msg>) -> omni::HandlerResult {
        Ok(())
    }
    async fn r#type(&mut self, _: &mut omni::Context<Msg>, _: String) -> omni::HandlerResult {
        Ok(())
    }
    async fn super_(&mut self, _: &mut omni::Context<Msg>) -> omni::HandlerResult {
        Ok(())
    }
    async fn point(&mut self, cx: &mut omni::Context<Msg>, _: f32, _: f32) -> omni::HandlerResult {
        cx.send(MsgFromServer::Done);
        Ok(())
    }
}

fn main() {
    let _ = Handler;
}
