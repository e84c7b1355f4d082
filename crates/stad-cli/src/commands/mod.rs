//! One module per command.

pub mod benchmark;
pub mod demo;
pub mod eval;
pub mod predict;
pub mod report;
pub mod selftest;
pub mod train;
