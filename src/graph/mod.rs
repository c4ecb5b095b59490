//! The layer graph: checked layers, expansion, shape inference, parameter and MAC counts.
pub mod build;
pub mod layer;
pub mod summary;
pub use build::Graph;
pub use layer::{Layer, NodeRef, Op};
