//! Layer graph (placeholder until the graph module lands).
/// One layer (placeholder).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Layer;
