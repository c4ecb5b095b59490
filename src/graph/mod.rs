//! The layer graph: checked layers, shape inference, parameter and MAC counts.
pub mod layer;
pub use layer::{Layer, NodeRef, Op};
