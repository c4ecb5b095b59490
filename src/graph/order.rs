//! The layers as a petgraph DAG: cycles are errors, layers that do not reach the output are
//! warnings, and the order is topological and stable (among ready layers, the earliest in the
//! file first).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use petgraph::graph::{DiGraph, NodeIndex};

use super::spans_of;
use crate::diagnostic::Diagnostic;
use crate::experiment::{ModelSpans, ModelSpec, NodeRef};

/// Layer indices of `model` in topological order. `None` on a cycle (reported).
pub fn order(
    model: &ModelSpec,
    spans: Option<&ModelSpans>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<usize>> {
    let n = model.layers.len();
    let mut g: DiGraph<usize, usize> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..n).map(|i| g.add_node(i)).collect();
    for (i, l) in model.layers.iter().enumerate() {
        for (k, r) in l.inputs.iter().enumerate() {
            if let NodeRef::Layer(j) = r {
                g.add_edge(nodes[*j], nodes[i], k);
            }
        }
    }
    if let Err(cycle) = petgraph::algo::toposort(&g, None) {
        let i = g[cycle.node_id()];
        let s = spans_of(spans, i);
        diags.push(
            Diagnostic::error(
                s.inputs.unwrap_or(s.name),
                format!("layer `{}` is part of a cycle", model.layers[i].name),
            )
            .label("its inputs lead back to itself")
            .help("a layer can only read layers that do not depend on it"),
        );
        return None;
    }
    let mut indeg: Vec<usize> = (0..n)
        .map(|i| {
            g.neighbors_directed(nodes[i], petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut heap: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|i| indeg[*i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = heap.pop() {
        order.push(i);
        for succ in g.neighbors_directed(nodes[i], petgraph::Direction::Outgoing) {
            let j = g[succ];
            indeg[j] -= 1;
            if indeg[j] == 0 {
                heap.push(Reverse(j));
            }
        }
    }
    // Unused layers: nothing that reaches the output (the last layer) reads them.
    let mut used = vec![false; n];
    let mut stack: Vec<usize> = n.checked_sub(1).into_iter().collect();
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut used[i], true) {
            stack.extend(model.layers[i].inputs.iter().filter_map(|x| match x {
                NodeRef::Layer(j) => Some(*j),
                NodeRef::Input => None,
            }));
        }
    }
    for (i, l) in model.layers.iter().enumerate() {
        if !used[i] {
            diags.push(
                Diagnostic::warning(
                    spans_of(spans, i).name,
                    format!("layer `{}` does not contribute to the output", l.name),
                )
                .label("unused")
                .help("remove it, or name it in a later layer's `inputs`"),
            );
        }
    }
    // The output goes last, for `Graph::output_shape`: only unused layers can follow it, and
    // none of them reads it, so the order stays topological.
    if let Some(pos) = order.iter().position(|&i| i + 1 == n) {
        let out = order.remove(pos);
        order.push(out);
    }
    Some(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{LayerOp, LayerSpec};

    fn spec(layers: &[(&str, &[NodeRef])]) -> ModelSpec {
        ModelSpec {
            input: [1, 4, 4],
            layers: layers
                .iter()
                .map(|(name, inputs)| LayerSpec {
                    name: name.to_string(),
                    op: if inputs.len() > 1 {
                        LayerOp::Add
                    } else {
                        LayerOp::Relu
                    },
                    inputs: inputs.to_vec(),
                })
                .collect(),
        }
    }

    use NodeRef::{Input, Layer as L};

    #[test]
    fn the_order_is_topological_and_stable() {
        type Case<'a> = (&'a [(&'a str, &'a [NodeRef])], &'a [usize]);
        let cases: [Case; 3] = [
            (&[("a", &[Input]), ("b", &[L(0)])], &[0, 1]),
            // `a` reads `b`, defined after it: `b` first.
            (
                &[("a", &[L(1)]), ("b", &[Input]), ("c", &[L(0)])],
                &[1, 0, 2],
            ),
            // Two branches: file order among ready layers.
            (
                &[("x", &[Input]), ("y", &[Input]), ("sum", &[L(0), L(1)])],
                &[0, 1, 2],
            ),
        ];
        for (layers, want) in cases {
            let mut diags = Vec::new();
            let got = order(&spec(layers), None, &mut diags).expect("no cycle");
            assert_eq!(got, want, "{layers:?}");
            assert!(diags.is_empty(), "{diags:?}");
        }
    }

    #[test]
    fn a_cycle_is_an_error_and_unused_layers_warn() {
        let mut diags = Vec::new();
        assert!(order(&spec(&[("a", &[L(1)]), ("b", &[L(0)])]), None, &mut diags).is_none());
        assert!(
            diags[0].message.ends_with("is part of a cycle"),
            "{diags:?}"
        );
        let mut diags = Vec::new();
        let got = order(
            &spec(&[("dead", &[Input]), ("out", &[Input])]),
            None,
            &mut diags,
        );
        assert_eq!(got, Some(vec![0, 1]));
        assert_eq!(diags.len(), 1);
        assert!(!diags[0].is_error());
        assert_eq!(
            diags[0].message,
            "layer `dead` does not contribute to the output"
        );
    }
}
