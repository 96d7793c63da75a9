//! A push-only protocol (a dashboard): no client variants, so the handler has only hooks, and
//! a protocol's dispatch future is `Send` so a runtime can spawn it.
use std::future::Future;

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Dashboard {
    #[server]
    Cpu(f32),
}

struct Watcher;

impl DashboardHandler for Watcher {
    async fn connected(&mut self, cx: &mut omni::Context<Dashboard>) -> omni::HandlerResult {
        cx.subscribe("cpu");
        Ok(())
    }
}

fn assert_send<F: Future + Send>(_: F) {}

fn main() {
    let mut watcher = Watcher;
    let mut cx = omni::Context::<Dashboard>::new(omni::SessionId::from_u128(1));
    assert_send(<Dashboard as omni::Dispatch<Watcher>>::connected(&mut watcher, &mut cx));
}
