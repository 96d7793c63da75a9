//! A protocol of 100 variants (60 client, 40 server) expands and compiles.

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Big {
    #[client]
    Ask0(u32, String),
    #[client]
    Ask1(u32, String),
    #[client]
    Ask2(u32, String),
    #[client]
    Ask3(u32, String),
    #[client]
    Ask4(u32, String),
    #[client]
    Ask5(u32, String),
    #[client]
    Ask6(u32, String),
    #[client]
    Ask7(u32, String),
    #[client]
    Ask8(u32, String),
    #[client]
    Ask9(u32, String),
    #[client]
    Ask10(u32, String),
    #[client]
    Ask11(u32, String),
    #[client]
    Ask12(u32, String),
    #[client]
    Ask13(u32, String),
    #[client]
    Ask14(u32, String),
    #[client]
    Ask15(u32, String),
    #[client]
    Ask16(u32, String),
    #[client]
    Ask17(u32, String),
    #[client]
    Ask18(u32, String),
    #[client]
    Ask19(u32, String),
    #[client]
    Ask20(u32, String),
    #[client]
    Ask21(u32, String),
    #[client]
    Ask22(u32, String),
    #[client]
    Ask23(u32, String),
    #[client]
    Ask24(u32, String),
    #[client]
    Ask25(u32, String),
    #[client]
    Ask26(u32, String),
    #[client]
    Ask27(u32, String),
    #[client]
    Ask28(u32, String),
    #[client]
    Ask29(u32, String),
    #[client]
    Ask30(u32, String),
    #[client]
    Ask31(u32, String),
    #[client]
    Ask32(u32, String),
    #[client]
    Ask33(u32, String),
    #[client]
    Ask34(u32, String),
    #[client]
    Ask35(u32, String),
    #[client]
    Ask36(u32, String),
    #[client]
    Ask37(u32, String),
    #[client]
    Ask38(u32, String),
    #[client]
    Ask39(u32, String),
    #[client]
    Ask40(u32, String),
    #[client]
    Ask41(u32, String),
    #[client]
    Ask42(u32, String),
    #[client]
    Ask43(u32, String),
    #[client]
    Ask44(u32, String),
    #[client]
    Ask45(u32, String),
    #[client]
    Ask46(u32, String),
    #[client]
    Ask47(u32, String),
    #[client]
    Ask48(u32, String),
    #[client]
    Ask49(u32, String),
    #[client]
    Ask50(u32, String),
    #[client]
    Ask51(u32, String),
    #[client]
    Ask52(u32, String),
    #[client]
    Ask53(u32, String),
    #[client]
    Ask54(u32, String),
    #[client]
    Ask55(u32, String),
    #[client]
    Ask56(u32, String),
    #[client]
    Ask57(u32, String),
    #[client]
    Ask58(u32, String),
    #[client]
    Ask59(u32, String),
    #[server]
    Answer0 { value: u64, note: Option<String> },
    #[server]
    Answer1 { value: u64, note: Option<String> },
    #[server]
    Answer2 { value: u64, note: Option<String> },
    #[server]
    Answer3 { value: u64, note: Option<String> },
    #[server]
    Answer4 { value: u64, note: Option<String> },
    #[server]
    Answer5 { value: u64, note: Option<String> },
    #[server]
    Answer6 { value: u64, note: Option<String> },
    #[server]
    Answer7 { value: u64, note: Option<String> },
    #[server]
    Answer8 { value: u64, note: Option<String> },
    #[server]
    Answer9 { value: u64, note: Option<String> },
    #[server]
    Answer10 { value: u64, note: Option<String> },
    #[server]
    Answer11 { value: u64, note: Option<String> },
    #[server]
    Answer12 { value: u64, note: Option<String> },
    #[server]
    Answer13 { value: u64, note: Option<String> },
    #[server]
    Answer14 { value: u64, note: Option<String> },
    #[server]
    Answer15 { value: u64, note: Option<String> },
    #[server]
    Answer16 { value: u64, note: Option<String> },
    #[server]
    Answer17 { value: u64, note: Option<String> },
    #[server]
    Answer18 { value: u64, note: Option<String> },
    #[server]
    Answer19 { value: u64, note: Option<String> },
    #[server]
    Answer20 { value: u64, note: Option<String> },
    #[server]
    Answer21 { value: u64, note: Option<String> },
    #[server]
    Answer22 { value: u64, note: Option<String> },
    #[server]
    Answer23 { value: u64, note: Option<String> },
    #[server]
    Answer24 { value: u64, note: Option<String> },
    #[server]
    Answer25 { value: u64, note: Option<String> },
    #[server]
    Answer26 { value: u64, note: Option<String> },
    #[server]
    Answer27 { value: u64, note: Option<String> },
    #[server]
    Answer28 { value: u64, note: Option<String> },
    #[server]
    Answer29 { value: u64, note: Option<String> },
    #[server]
    Answer30 { value: u64, note: Option<String> },
    #[server]
    Answer31 { value: u64, note: Option<String> },
    #[server]
    Answer32 { value: u64, note: Option<String> },
    #[server]
    Answer33 { value: u64, note: Option<String> },
    #[server]
    Answer34 { value: u64, note: Option<String> },
    #[server]
    Answer35 { value: u64, note: Option<String> },
    #[server]
    Answer36 { value: u64, note: Option<String> },
    #[server]
    Answer37 { value: u64, note: Option<String> },
    #[server]
    Answer38 { value: u64, note: Option<String> },
    #[server]
    Answer39 { value: u64, note: Option<String> },
}

struct Handler;

impl BigHandler for Handler {
    async fn ask0(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer0 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask1(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer1 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask2(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer2 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask3(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer3 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask4(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer4 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask5(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer5 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask6(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer6 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask7(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer7 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask8(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer8 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask9(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer9 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask10(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer10 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask11(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer11 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask12(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer12 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask13(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer13 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask14(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer14 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask15(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer15 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask16(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer16 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask17(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer17 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask18(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer18 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask19(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer19 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask20(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer20 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask21(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer21 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask22(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer22 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask23(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer23 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask24(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer24 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask25(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer25 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask26(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer26 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask27(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer27 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask28(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer28 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask29(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer29 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask30(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer30 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask31(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer31 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask32(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer32 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask33(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer33 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask34(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer34 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask35(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer35 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask36(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer36 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask37(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer37 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask38(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer38 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask39(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer39 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask40(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer0 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask41(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer1 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask42(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer2 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask43(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer3 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask44(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer4 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask45(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer5 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask46(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer6 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask47(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer7 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask48(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer8 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask49(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer9 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask50(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer10 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask51(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer11 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask52(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer12 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask53(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer13 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask54(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer14 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask55(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer15 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask56(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer16 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask57(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer17 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask58(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer18 { value: u64::from(n), note: None });
        Ok(())
    }
    async fn ask59(&mut self, cx: &mut omni::Context<Big>, n: u32, _: String) -> omni::HandlerResult {
        cx.send(BigFromServer::Answer19 { value: u64::from(n), note: None });
        Ok(())
    }
}

fn main() {
    let _ = Handler;
}
