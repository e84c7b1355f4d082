//! Workspace-level examples, integration tests and benches of stad.
