//! The per-layer table that `runner check` prints.

use serde::Serialize;

use super::{Fusion, GeluApprox, Graph, Init, NodeRef, Op};
use crate::diagnostic::shape_str;

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Layer name.
    pub name: String,
    /// Op kind as written in files.
    pub op: String,
    /// Inputs (layer names or `input`), shown only when not simply the previous layer.
    pub inputs: Vec<String>,
    /// Per-sample output shape.
    pub shape: Vec<usize>,
    /// Trainable parameters.
    pub params: usize,
    /// Multiply-accumulates per sample.
    pub macs: u64,
    /// For a ReLU computed inside the layer before it ([`Fusion`]): that layer's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fused_into: Option<String>,
}

/// Table rows for a graph.
pub fn rows(g: &Graph) -> Vec<Row> {
    let fusion = Fusion::of(g);
    g.layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let sequential = l.inputs.len() == 1
                && match l.inputs[0] {
                    NodeRef::Input => i == 0,
                    NodeRef::Layer(j) => j + 1 == i,
                };
            let inputs = if sequential {
                Vec::new()
            } else {
                l.inputs
                    .iter()
                    .map(|r| match r {
                        NodeRef::Input => "input".to_string(),
                        NodeRef::Layer(j) => g.layers[*j].name.clone(),
                    })
                    .collect()
            };
            let fused_into = fusion.host(i).map(|h| g.layers[h].name.clone());
            let op = match &fused_into {
                Some(host) => format!("{} (fused into {host})", describe(&l.op)),
                None if fusion.has_relu(i) => format!("{} + relu", describe(&l.op)),
                None => describe(&l.op),
            };
            Row {
                name: l.name.clone(),
                op,
                inputs,
                shape: l.shape.clone(),
                params: l.params,
                macs: l.macs,
                fused_into,
            }
        })
        .collect()
}

fn init_note(init: &Init) -> &'static str {
    match init {
        Init::Default => "",
        Init::Dirac => " dirac",
        Init::Whitening { .. } => " whitening",
    }
}

fn describe(op: &Op) -> String {
    match op {
        Op::Conv2d {
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
            bias,
            init,
        } => {
            let mut s = format!("conv2d {in_channels}->{out_channels} k{kernel}");
            if *stride != 1 {
                s += &format!(" s{stride}");
            }
            if *padding != 0 {
                s += &format!(" p{padding}");
            }
            if !bias {
                s += " nobias";
            }
            s + init_note(init)
        }
        Op::Linear {
            in_features,
            out_features,
            init,
            ..
        } => format!("linear {in_features}->{out_features}{}", init_note(init)),
        Op::Scale { factor } => format!("scale {factor}"),
        Op::Gelu {
            approximate: GeluApprox::Tanh,
        } => "gelu tanh".to_string(),
        Op::MaxPool2d { kernel, stride, .. } => format!("max_pool2d k{kernel} s{stride}"),
        Op::AvgPool2d { kernel, stride, .. } => format!("avg_pool2d k{kernel} s{stride}"),
        Op::Dropout { p } => format!("dropout {p}"),
        other => other.kind().name().to_string(),
    }
}

/// Formats `n` with thousands separators.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The aligned text table with totals.
pub fn table(g: &Graph) -> String {
    let rows = rows(g);
    let mut cells: Vec<[String; 5]> = vec![[
        "layer".into(),
        "op".into(),
        "output".into(),
        "params".into(),
        "MACs".into(),
    ]];
    cells.push([
        String::from("input"),
        String::new(),
        shape_str(&g.input),
        String::new(),
        String::new(),
    ]);
    for r in &rows {
        let op = if r.inputs.is_empty() {
            r.op.clone()
        } else {
            format!("{} <- {}", r.op, r.inputs.join(", "))
        };
        cells.push([
            r.name.clone(),
            op,
            shape_str(&r.shape),
            thousands(r.params as u64),
            thousands(r.macs),
        ]);
    }
    cells.push([
        "total".into(),
        String::new(),
        String::new(),
        thousands(g.params() as u64),
        thousands(g.macs()),
    ]);
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, r) in cells.iter().enumerate() {
        let line = format!(
            "  {:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4]
        );
        out.push_str(line.trim_end());
        out.push('\n');
        if i == 0 || i + 2 == cells.len() {
            out.push_str(&format!(
                "  {}\n",
                "-".repeat(widths.iter().sum::<usize>() + 8)
            ));
        }
    }
    out
}
