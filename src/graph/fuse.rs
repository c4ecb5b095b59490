//! Which ReLUs run inside the layer before them.
//!
//! A ReLU whose only input is a conv or a BatchNorm, and which is that layer's only reader,
//! is computed in the same pass as the layer's output (the CPU kernels apply it while the
//! values are still in cache, and the backward pass masks the gradient there): one tensor and
//! one pass over it fewer, forward and backward, with the same bits as the two ops apart. The
//! model builder ([`crate::model::Model`]) and the `runner check` table
//! ([`super::summary`]) both read this one decision.

use super::{Graph, NodeRef, Op};

/// The fused pairs of a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fusion {
    /// For every layer: the layer its ReLU is fused into, if it is a fused ReLU.
    host: Vec<Option<usize>>,
}

impl Fusion {
    /// Finds every ReLU that can run inside its input layer.
    pub fn of(g: &Graph) -> Fusion {
        let n = g.layers.len();
        let mut readers = vec![0usize; n];
        for l in &g.layers {
            for r in &l.inputs {
                if let NodeRef::Layer(j) = *r {
                    if let Some(c) = readers.get_mut(j) {
                        *c += 1;
                    }
                }
            }
        }
        let mut host = vec![None; n];
        for (j, l) in g.layers.iter().enumerate() {
            let &[NodeRef::Layer(i)] = l.inputs.as_slice() else {
                continue;
            };
            let fusable = matches!(l.op, Op::Relu)
                && i < j
                && readers[i] == 1
                && matches!(g.layers[i].op, Op::Conv2d { .. } | Op::BatchNorm2d { .. });
            if fusable {
                host[j] = Some(i);
            }
        }
        Fusion { host }
    }

    /// Whether layer `i` computes a ReLU of its output in the same pass.
    pub fn has_relu(&self, i: usize) -> bool {
        self.host.contains(&Some(i))
    }

    /// The layer that fused ReLU `j` runs inside, if `j` is one (it then passes its input on).
    pub fn host(&self, j: usize) -> Option<usize> {
        self.host.get(j).copied().flatten()
    }

    /// Every fused pair, `(host, relu)`, in layer order.
    pub fn pairs(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.host
            .iter()
            .enumerate()
            .filter_map(|(j, h)| h.map(|i| (i, j)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Init, Layer};

    fn layer(name: &str, op: Op, inputs: &[NodeRef]) -> Layer {
        Layer {
            name: name.into(),
            op,
            inputs: inputs.to_vec(),
            shape: vec![4, 8, 8],
            params: 0,
            macs: 0,
        }
    }

    fn conv() -> Op {
        Op::Conv2d {
            in_channels: 4,
            out_channels: 4,
            kernel: 3,
            stride: 1,
            padding: 1,
            bias: true,
            init: Init::Default,
        }
    }

    fn bn() -> Op {
        Op::BatchNorm2d {
            features: 4,
            eps: 1e-5,
            momentum: 0.1,
        }
    }

    use NodeRef::{Input, Layer as L};

    #[test]
    fn a_relu_fuses_into_its_only_conv_or_batch_norm_input_when_it_is_the_only_reader() {
        let g = Graph {
            input: [4, 8, 8],
            layers: vec![
                layer("conv1", conv(), &[Input]),
                layer("relu1", Op::Relu, &[L(0)]),
                // conv2 is read by relu2 and by the shortcut: its own output must survive.
                layer("conv2", conv(), &[L(1)]),
                layer("relu2", Op::Relu, &[L(2)]),
                layer("add", Op::Add, &[L(3), L(2)]),
                layer("bn", bn(), &[L(4)]),
                layer("relu3", Op::Relu, &[L(5)]),
                // A ReLU after a ReLU or an add stays a layer of its own.
                layer("relu4", Op::Relu, &[L(6)]),
                layer("tanh", Op::Tanh, &[L(7)]),
            ],
        };
        let f = Fusion::of(&g);
        assert_eq!(f.pairs().collect::<Vec<_>>(), vec![(0, 1), (5, 6)]);
        assert!(f.has_relu(0) && f.has_relu(5));
        assert!(!f.has_relu(2) && !f.has_relu(6) && !f.has_relu(99));
        assert_eq!((f.host(1), f.host(3), f.host(7)), (Some(0), None, None));
    }
}
