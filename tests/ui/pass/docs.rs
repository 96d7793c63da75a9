//! Doc comments reach the generated items: with `missing_docs` denied, a documented enum's
//! output compiles, so the wire enums, their variants and fields, and the handler trait and
//! its methods all carry docs.
#![deny(missing_docs)]

/// The protocol.
pub mod proto {
    /// Everything that can happen.
    #[omni::protocol]
    #[derive(Debug, Clone, PartialEq)]
    pub enum Msg {
        /// Ask for the time.
        #[client]
        WhatTime,
        /// Move somewhere.
        #[client]
        Go {
            /// Across.
            x: i32,
        },
        /// The time.
        #[server]
        Time(u64),
    }
}

fn main() {}
