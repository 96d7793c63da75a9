//! Placeholder until the fan-out part lands.
use crate::Options;
pub fn run(_: &Options) {}
pub fn serve(_: &str) {}
pub fn subscribe(_: &[String]) {}
