//! From raw layers to the checked graph: expand `vgg` shorthands and block instances, resolve
//! names into a petgraph DAG, infer every shape, count parameters and MACs.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::ops::Range;

use petgraph::graph::{DiGraph, NodeIndex};

use super::{Layer, NodeRef, Op};
use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::spec::raw::{read_layers, RawBlock, RawLayer, RawOp, VggItem};
use crate::spec::read::{checked, int_in, shape_str, Args, Cx, Sp};

/// Most layers a model may expand to; stops exponential block nesting.
pub const MAX_LAYERS: usize = 10_000;
/// Deepest block nesting.
const MAX_DEPTH: usize = 16;
/// Largest channel/feature width accepted.
pub const MAX_WIDTH: u64 = 1 << 20;
/// Largest kernel, stride or padding accepted.
const MAX_WINDOW: u64 = 1 << 12;
/// Largest number of parameters accepted (10 billion), per layer and in total.
const MAX_PARAMS: u128 = 10_000_000_000;
/// Most values one layer may output per image. Keeps every shape product far from overflow even
/// when padding grows the image layer after layer.
const MAX_ELEMENTS: u128 = 1 << 40;

/// The product of sizes without overflow (saturating far above every limit).
fn product(xs: &[usize]) -> u128 {
    xs.iter().fold(1u128, |a, &x| a.saturating_mul(x as u128))
}

/// MACs as stored: saturating at `u64::MAX` (only reachable by models rejected elsewhere).
fn macs_of(xs: &[usize]) -> u64 {
    u64::try_from(product(xs)).unwrap_or(u64::MAX)
}

/// A reference to a layer input, before names are resolved.
#[derive(Debug, Clone)]
enum Ref {
    /// The model input.
    Input,
    /// A known flat layer.
    Node(usize),
    /// A name to look up in a scope, or the scope's input.
    Named {
        scope: usize,
        name: String,
        span: Range<usize>,
    },
}

#[derive(Debug)]
struct Scope {
    prefix: String,
    names: HashMap<String, (usize, Range<usize>)>,
    input: Ref,
}

/// A layer after expansion, before shape inference.
#[derive(Debug)]
struct Flat<'a> {
    name: String,
    name_span: Range<usize>,
    op: RawOp<'a>,
    op_span: Range<usize>,
    inputs: Vec<Ref>,
    inputs_span: Option<Range<usize>>,
}

struct Expander<'a, 'b> {
    blocks: &'b [RawBlock<'a>],
    flats: Vec<Flat<'a>>,
    scopes: Vec<Scope>,
    /// Block instances expanded so far: they count against [`MAX_LAYERS`] like layers, so that
    /// blocks made only of other blocks cannot expand forever.
    instances: usize,
    /// The expansion limit was reported; stop expanding.
    too_many: bool,
    /// The nesting limit was reported; stop expanding (a block instantiating itself ten times
    /// would otherwise report 10^16 times).
    too_deep: bool,
}

fn short(op: &RawOp<'_>) -> &'static str {
    match op {
        RawOp::Conv2d { .. } => "conv",
        RawOp::BatchNorm2d { .. } => "bn",
        RawOp::Relu => "relu",
        RawOp::Tanh => "tanh",
        RawOp::Sigmoid => "sigmoid",
        RawOp::MaxPool2d { .. } => "pool",
        RawOp::AvgPool2d { .. } => "avgpool",
        RawOp::GlobalAvgPool => "gap",
        RawOp::Flatten => "flatten",
        RawOp::Linear { .. } => "fc",
        RawOp::Dropout { .. } => "dropout",
        RawOp::LogSoftmax => "log_softmax",
        RawOp::Add => "add",
        RawOp::Concat => "concat",
        RawOp::Identity => "identity",
        RawOp::Vgg { .. } => "features",
        RawOp::Block { .. } => "block",
    }
}

/// Letters, digits and `_`, not starting with a digit; dots separate block scopes
/// (`stage2.conv1`), as in resolved `config.toml` files.
fn valid_name(s: &str) -> bool {
    s.split('.').all(|part| {
        let mut chars = part.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

impl<'a, 'b> Expander<'a, 'b> {
    /// Expands `layers` into scope `scope`; returns the node that ends the list (its output).
    fn expand(
        &mut self,
        cx: &mut Cx<'a>,
        layers: Vec<RawLayer<'a>>,
        scope: usize,
        depth: usize,
    ) -> Option<Ref> {
        let mut prev = self.scopes[scope].input.clone();
        let mut counters: HashMap<&'static str, usize> = HashMap::new();
        let mut last = None;
        for layer in layers {
            if self.too_deep {
                return None;
            }
            if self.flats.len() + self.instances > MAX_LAYERS {
                if !self.too_many {
                    cx.push(
                        Diagnostic::error(
                            layer.span.clone(),
                            format!("the model expands to more than {MAX_LAYERS} layers"),
                        )
                        .label("expansion stopped here"),
                    );
                    self.too_many = true;
                }
                return None;
            }
            let kind = match &layer.op.value {
                RawOp::Block { block, .. } => block.value.clone(),
                op => short(op).to_string(),
            };
            let local = match &layer.name {
                Some(n) => {
                    if !valid_name(&n.value) || n.value == "input" {
                        cx.push(
                            Diagnostic::error(
                                n.span.clone(),
                                format!("invalid layer name `{}`", n.value),
                            )
                            .label(
                                "names use letters, digits, `_` and `.`, and `input` is reserved",
                            ),
                        );
                    }
                    n.clone()
                }
                None => {
                    let k = counters.entry(short(&layer.op.value)).or_insert(0);
                    *k += 1;
                    let name = if matches!(layer.op.value, RawOp::Vgg { .. }) && *k == 1 {
                        kind.clone()
                    } else {
                        format!("{kind}{k}")
                    };
                    Sp::new(name, layer.span.clone())
                }
            };
            let full = format!("{}{}", self.scopes[scope].prefix, local.value);
            let inputs: Vec<Ref> = match &layer.inputs {
                Some(list) => list
                    .value
                    .iter()
                    .map(|n| Ref::Named {
                        scope,
                        name: n.value.clone(),
                        span: n.span.clone(),
                    })
                    .collect(),
                None => vec![prev.clone()],
            };
            let inputs_span = layer.inputs.as_ref().map(|l| l.span.clone());
            let out = match layer.op.value {
                RawOp::Vgg { cfg, batch_norm } => {
                    self.expand_vgg(cx, &full, cfg, batch_norm, inputs, inputs_span)
                }
                RawOp::Block { block, args } => {
                    self.expand_block(cx, &full, block, args, inputs, layer.span.clone(), depth)
                }
                op => {
                    self.flats.push(Flat {
                        name: full,
                        name_span: local.span.clone(),
                        op,
                        op_span: layer.op.span,
                        inputs,
                        inputs_span,
                    });
                    Some(self.flats.len() - 1)
                }
            };
            let Some(out) = out else { continue };
            let names = &mut self.scopes[scope].names;
            if let Some((_, first)) = names.get(&local.value) {
                let first = first.clone();
                cx.push(
                    Diagnostic::error(
                        local.span.clone(),
                        format!("duplicate layer name `{}`", local.value),
                    )
                    .label("second definition")
                    .note(format!("first defined at {}", cx.line_col(first.start)))
                    .help("give each layer a unique `name`"),
                );
            } else {
                names.insert(local.value.clone(), (out, local.span.clone()));
            }
            prev = Ref::Node(out);
            last = Some(Ref::Node(out));
        }
        last
    }

    fn expand_vgg(
        &mut self,
        cx: &mut Cx<'a>,
        full: &str,
        cfg: Sp<Vec<Sp<VggItem>>>,
        bn: Option<Sp<bool>>,
        inputs: Vec<Ref>,
        inputs_span: Option<Range<usize>>,
    ) -> Option<usize> {
        let bn = bn.is_some_and(|b| b.value);
        let mut prev = inputs;
        let mut ins_span = inputs_span;
        let (mut convs, mut pools) = (0, 0);
        let start = self.flats.len();
        let push = |this: &mut Self,
                    name: String,
                    op: RawOp<'a>,
                    span: &Range<usize>,
                    prev: &mut Vec<Ref>,
                    ins_span: &mut Option<Range<usize>>| {
            this.flats.push(Flat {
                name,
                name_span: span.clone(),
                op,
                op_span: span.clone(),
                inputs: std::mem::take(prev),
                inputs_span: ins_span.take(),
            });
            *prev = vec![Ref::Node(this.flats.len() - 1)];
        };
        for item in &cfg.value {
            let s = &item.span;
            // A `cfg` of a million widths must not expand to millions of layers.
            if self.flats.len() + self.instances > MAX_LAYERS {
                if !self.too_many {
                    cx.push(
                        Diagnostic::error(
                            s.clone(),
                            format!("the model expands to more than {MAX_LAYERS} layers"),
                        )
                        .label("expansion stopped here"),
                    );
                    self.too_many = true;
                }
                return None;
            }
            let sp = |v: u64| Sp::new(v, s.clone());
            match item.value {
                VggItem::Conv(width) => {
                    convs += 1;
                    let conv = RawOp::Conv2d {
                        in_channels: None,
                        out: sp(width),
                        kernel: sp(3),
                        stride: None,
                        padding: Some(sp(1)),
                        bias: None,
                    };
                    push(
                        self,
                        format!("{full}.conv{convs}"),
                        conv,
                        s,
                        &mut prev,
                        &mut ins_span,
                    );
                    if bn {
                        push(
                            self,
                            format!("{full}.bn{convs}"),
                            RawOp::BatchNorm2d {
                                features: None,
                                eps: None,
                                momentum: None,
                            },
                            s,
                            &mut prev,
                            &mut ins_span,
                        );
                    }
                    push(
                        self,
                        format!("{full}.relu{convs}"),
                        RawOp::Relu,
                        s,
                        &mut prev,
                        &mut ins_span,
                    );
                }
                VggItem::Pool => {
                    pools += 1;
                    push(
                        self,
                        format!("{full}.pool{pools}"),
                        RawOp::MaxPool2d {
                            kernel: sp(2),
                            stride: Some(sp(2)),
                            padding: None,
                        },
                        s,
                        &mut prev,
                        &mut ins_span,
                    );
                }
            }
        }
        if self.flats.len() == start {
            // An empty cfg is a pass-through, kept as an identity so the name still exists.
            push(
                self,
                full.to_string(),
                RawOp::Identity,
                &cfg.span,
                &mut prev,
                &mut ins_span,
            );
        }
        Some(self.flats.len() - 1)
    }

    #[allow(clippy::too_many_arguments)]
    fn expand_block(
        &mut self,
        cx: &mut Cx<'a>,
        full: &str,
        block: Sp<String>,
        args: Vec<(Sp<String>, &'a crate::spec::read::Value<'a>)>,
        inputs: Vec<Ref>,
        span: Range<usize>,
        depth: usize,
    ) -> Option<usize> {
        let Some(def) = self.blocks.iter().find(|b| b.name.value == block.value) else {
            let mut d = Diagnostic::error(
                block.span.clone(),
                format!("unknown block `{}`", block.value),
            )
            .label("not defined in `[model.blocks]`");
            if let Some(m) = did_you_mean(
                &block.value,
                self.blocks.iter().map(|b| b.name.value.as_str()),
            ) {
                d = d.help(format!("did you mean `{m}`?"));
            }
            cx.push(d);
            return None;
        };
        self.instances += 1;
        if depth >= MAX_DEPTH {
            self.too_deep = true;
            cx.push(
                Diagnostic::error(
                    block.span.clone(),
                    format!("blocks nest more than {MAX_DEPTH} deep"),
                )
                .label("does this block instantiate itself?"),
            );
            return None;
        }
        if inputs.len() != 1 {
            cx.push(
                Diagnostic::error(
                    span,
                    format!(
                        "a block instance takes exactly one input, found {}",
                        inputs.len()
                    ),
                )
                .label("use an `add` or `concat` layer first"),
            );
            return None;
        }
        let mut map: Args<'a> = HashMap::new();
        for (k, v) in &args {
            if !def.params.iter().any(|p| p.value == k.value) {
                let mut d = Diagnostic::error(
                    k.span.clone(),
                    format!("block `{}` has no parameter `{}`", block.value, k.value),
                )
                .label("unknown argument");
                if let Some(m) = did_you_mean(&k.value, def.params.iter().map(|p| p.value.as_str()))
                {
                    d = d.help(format!("did you mean `{m}`?"));
                }
                cx.push(d);
            }
            map.insert(k.value.clone(), *v);
        }
        let missing: Vec<&str> = def
            .params
            .iter()
            .filter(|p| !map.contains_key(&p.value))
            .map(|p| p.value.as_str())
            .collect();
        if !missing.is_empty() {
            cx.push(
                Diagnostic::error(
                    span,
                    format!(
                        "block `{}` needs argument{} {}",
                        block.value,
                        if missing.len() > 1 { "s" } else { "" },
                        missing
                            .iter()
                            .map(|m| format!("`{m}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .label("missing in `args`")
                .help(format!(
                    "add `args = {{ {} }}`",
                    missing
                        .iter()
                        .map(|m| format!("{m} = ..."))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
            return None;
        }
        let saved = cx.args.replace(map);
        let body = read_layers(def.layers, cx);
        cx.args = saved;
        let body = body?;
        if body.value.is_empty() {
            cx.push(
                Diagnostic::error(
                    def.layers.span(),
                    format!("block `{}` has no layers", block.value),
                )
                .label("empty"),
            );
            return None;
        }
        self.scopes.push(Scope {
            prefix: format!("{full}."),
            names: HashMap::new(),
            input: inputs.into_iter().next()?,
        });
        let scope = self.scopes.len() - 1;
        match self.expand(cx, body.value, scope, depth + 1)? {
            Ref::Node(n) => Some(n),
            _ => None,
        }
    }

    /// Resolves a reference to a node (or the model input), following scope inputs.
    fn resolve(&self, r: &Ref, cx: &mut Cx<'a>, hops: usize) -> Option<NodeRefOrInput> {
        match r {
            Ref::Input => Some(NodeRefOrInput::Input),
            Ref::Node(n) => Some(NodeRefOrInput::Node(*n)),
            Ref::Named { scope, name, span } => {
                let s = &self.scopes[*scope];
                if name == "input" {
                    return if hops > MAX_DEPTH {
                        None
                    } else {
                        self.resolve(&s.input.clone(), cx, hops + 1)
                    };
                }
                match s.names.get(name) {
                    Some((n, _)) => Some(NodeRefOrInput::Node(*n)),
                    None => {
                        let mut d =
                            Diagnostic::error(span.clone(), format!("no layer named `{name}`"))
                                .label("unknown input");
                        d = match did_you_mean(
                            name,
                            s.names.keys().map(String::as_str).chain(["input"]),
                        ) {
                            Some(m) => d.help(format!("did you mean `{m}`?")),
                            None => d.note(
                                "`inputs` names layers in the same list (or block), or `input`",
                            ),
                        };
                        cx.push(d);
                        None
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeRefOrInput {
    Input,
    Node(usize),
}

/// The checked graph, ready for the model builder and the summary table.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Layers in topological order.
    pub layers: Vec<Layer>,
    /// Per-sample input shape.
    pub input: [usize; 3],
}

impl Graph {
    /// Total trainable parameters.
    pub fn params(&self) -> usize {
        self.layers.iter().map(|l| l.params).sum()
    }

    /// Total multiply-accumulates per sample.
    pub fn macs(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| l.macs)
            .fold(0u64, u64::saturating_add)
    }

    /// Output shape of the last layer.
    pub fn output_shape(&self) -> Vec<usize> {
        self.layers
            .last()
            .map_or_else(|| self.input.to_vec(), |l| l.shape.clone())
    }
}

/// Expands, resolves, orders and infers shapes. Returns the graph and the span of the last
/// layer (where "wrong number of classes" errors point) when everything is consistent;
/// otherwise `None`, with every problem pushed to `cx`.
pub fn build<'a>(
    cx: &mut Cx<'a>,
    layers: Sp<Vec<RawLayer<'a>>>,
    blocks: &[RawBlock<'a>],
    input: [usize; 3],
) -> Option<(Graph, Range<usize>)> {
    let errors_before = cx.diags.iter().filter(|d| d.is_error()).count();
    let list_span = layers.span.clone();
    let mut ex = Expander {
        blocks,
        flats: Vec::new(),
        scopes: vec![Scope {
            prefix: String::new(),
            names: HashMap::new(),
            input: Ref::Input,
        }],
        instances: 0,
        too_many: false,
        too_deep: false,
    };
    let output = ex.expand(cx, layers.value, 0, 0);
    let expansion_failed = cx.diags.iter().filter(|d| d.is_error()).count() > errors_before;
    if ex.flats.is_empty() {
        if expansion_failed {
            return None; // e.g. a block that only nests itself: already reported
        }
        cx.push(
            Diagnostic::error(list_span, "the model has no layers")
                .label("empty")
                .help("add layers, e.g. `{ op = \"linear\", out = 10 }`"),
        );
        return None;
    }
    // Resolve inputs into graph edges.
    let mut g: DiGraph<usize, usize> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..ex.flats.len()).map(|i| g.add_node(i)).collect();
    let mut resolved: Vec<Vec<NodeRefOrInput>> = Vec::with_capacity(ex.flats.len());
    let mut ok = true;
    for i in 0..ex.flats.len() {
        let mut ins = Vec::new();
        for r in ex.flats[i].inputs.clone() {
            match ex.resolve(&r, cx, 0) {
                Some(x) => ins.push(x),
                None => ok = false,
            }
        }
        for (k, x) in ins.iter().enumerate() {
            if let NodeRefOrInput::Node(n) = x {
                g.add_edge(nodes[*n], nodes[i], k);
            }
        }
        resolved.push(ins);
    }
    if !ok {
        return None;
    }
    if let Err(cycle) = petgraph::algo::toposort(&g, None) {
        let f = &ex.flats[g[cycle.node_id()]];
        cx.push(
            Diagnostic::error(
                f.inputs_span.clone().unwrap_or(f.name_span.clone()),
                format!("layer `{}` is part of a cycle", f.name),
            )
            .label("its inputs lead back to itself")
            .help("a layer can only read layers that do not depend on it"),
        );
        return None;
    }
    // Stable topological order: among ready layers, the earliest in the file first.
    let n = ex.flats.len();
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
    let Some(Ref::Node(out)) = output else {
        return None;
    };
    // Unused layers: nothing that reaches the output reads them.
    let mut used = vec![false; n];
    let mut stack = vec![out];
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut used[i], true) {
            stack.extend(resolved[i].iter().filter_map(|x| match x {
                NodeRefOrInput::Node(j) => Some(*j),
                _ => None,
            }));
        }
    }
    for (i, f) in ex.flats.iter().enumerate() {
        if !used[i] {
            cx.push(
                Diagnostic::warning(
                    f.name_span.clone(),
                    format!("layer `{}` does not contribute to the output", f.name),
                )
                .label("unused")
                .help("remove it, or name it in a later layer's `inputs`"),
            );
        }
    }
    // Shape inference in topological order.
    let mut position = vec![usize::MAX; n];
    let mut shapes: Vec<Option<Vec<usize>>> = vec![None; n];
    let mut checked: Vec<Layer> = Vec::with_capacity(n);
    let mut total_params: u128 = 0;
    for &i in &order {
        let f = &ex.flats[i];
        let mut in_shapes = Vec::new();
        let mut refs = Vec::new();
        let mut known = true;
        for x in &resolved[i] {
            match x {
                NodeRefOrInput::Input => {
                    in_shapes.push(input.to_vec());
                    refs.push(NodeRef::Input);
                }
                NodeRefOrInput::Node(j) => match &shapes[*j] {
                    Some(s) => {
                        in_shapes.push(s.clone());
                        refs.push(NodeRef::Layer(position[*j]));
                    }
                    None => known = false,
                },
            }
        }
        if !known {
            continue; // an upstream error was already reported
        }
        let sources: Vec<String> = resolved[i]
            .iter()
            .map(|x| match x {
                NodeRefOrInput::Input => "the input".to_string(),
                NodeRefOrInput::Node(j) => format!("`{}`", ex.flats[*j].name),
            })
            .collect();
        let Some((op, shape, params, macs)) = infer(cx, f, &in_shapes, &sources) else {
            continue;
        };
        let elements = product(&shape);
        if elements > MAX_ELEMENTS {
            cx.push(
                Diagnostic::error(
                    f.op_span.clone(),
                    format!(
                        "`{}` outputs {} = {elements} values per image",
                        f.name,
                        shape_str(&shape)
                    ),
                )
                .label(format!("more than {MAX_ELEMENTS}"))
                .help("the activations would not fit in memory: use fewer channels, less padding or more pooling"),
            );
            continue;
        }
        total_params += params as u128;
        shapes[i] = Some(shape.clone());
        position[i] = checked.len();
        checked.push(Layer {
            name: f.name.clone(),
            op,
            inputs: refs,
            shape,
            params,
            macs,
        });
    }
    if total_params > MAX_PARAMS {
        cx.push(
            Diagnostic::error(
                layers_span(&ex),
                format!("the model has {total_params} parameters"),
            )
            .label(format!("more than {MAX_PARAMS}")),
        );
    }
    let errors_after = cx.diags.iter().filter(|d| d.is_error()).count();
    if errors_after > errors_before || checked.len() != n {
        return None;
    }
    let last_span = ex.flats[out].op_span.clone();
    // The checked list must end with the output layer for `Graph::output_shape`.
    let out_pos = position[out];
    if out_pos + 1 != checked.len() {
        let layer = checked.remove(out_pos);
        // Re-index: the output layer moves to the end; later layers shift down by one.
        let fix = |r: &mut NodeRef| {
            if let NodeRef::Layer(k) = r {
                if *k > out_pos {
                    *k -= 1;
                }
            }
        };
        for l in &mut checked[out_pos..] {
            l.inputs.iter_mut().for_each(fix);
        }
        checked.push(layer);
        let last = checked.len() - 1;
        for r in &mut checked[last].inputs {
            fix(r);
        }
        // Only unused layers can come after the output; none of them reads it, so the order stays topological.
    }
    Some((
        Graph {
            layers: checked,
            input,
        },
        last_span,
    ))
}

fn layers_span(ex: &Expander<'_, '_>) -> Range<usize> {
    ex.flats.first().map_or(0..0, |f| f.op_span.clone())
}

fn window(
    cx: &mut Cx<'_>,
    v: &Option<Sp<u64>>,
    default: u64,
    min: u64,
    what: &str,
) -> Option<usize> {
    int_in(cx, v.as_ref(), default, min, MAX_WINDOW, what)
}

fn width(cx: &mut Cx<'_>, v: &Sp<u64>, what: &str) -> Option<usize> {
    int_in(cx, Some(v), 0, 1, MAX_WIDTH, what)
}

fn prob(cx: &mut Cx<'_>, v: &Option<Sp<f64>>, default: f64, what: &str) -> Option<f64> {
    checked(
        cx,
        v.as_ref(),
        default,
        |x| (0.0..1.0).contains(&x),
        what,
        "0 <= value < 1",
    )
}

/// Needs a `[C, H, W]` input.
fn spatial(
    cx: &mut Cx<'_>,
    f: &Flat<'_>,
    s: &[usize],
    source: &str,
) -> Option<(usize, usize, usize)> {
    match s {
        [c, h, w] => Some((*c, *h, *w)),
        _ => {
            cx.push(
                Diagnostic::error(
                    f.op_span.clone(),
                    format!(
                        "`{}` needs a [C, H, W] input, but {source} produces {}",
                        f.name,
                        shape_str(s)
                    ),
                )
                .label("expects an image-shaped input")
                .help("spatial layers must come before `flatten` / `global_avg_pool`"),
            );
            None
        }
    }
}

fn out_size(
    cx: &mut Cx<'_>,
    f: &Flat<'_>,
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    in_shape: &[usize],
) -> Option<usize> {
    let padded = size + 2 * padding;
    if padded < kernel {
        cx.push(
            Diagnostic::error(f.op_span.clone(), format!("`{}`: kernel {kernel} is larger than its padded input ({size} + 2*{padding} = {padded})", f.name))
                .label(format!("input is {}", shape_str(in_shape)))
                .help("the spatial size has shrunk to nothing here: remove a pooling layer, add padding, or use a smaller kernel"),
        );
        return None;
    }
    Some((padded - kernel) / stride + 1)
}

type Inferred = (Op, Vec<usize>, usize, u64);

/// Weights plus bias of one layer, rejected above [`MAX_PARAMS`] before anything can overflow.
fn layer_params(
    cx: &mut Cx<'_>,
    f: &Flat<'_>,
    weights: u128,
    bias: Option<usize>,
) -> Option<usize> {
    let n = weights + bias.map_or(0, |b| b as u128);
    if n > MAX_PARAMS {
        cx.push(
            Diagnostic::error(
                f.op_span.clone(),
                format!("`{}` has {n} parameters", f.name),
            )
            .label(format!("more than {MAX_PARAMS}"))
            .help("use fewer channels or a smaller kernel"),
        );
        return None;
    }
    usize::try_from(n).ok()
}

fn infer(
    cx: &mut Cx<'_>,
    f: &Flat<'_>,
    ins: &[Vec<usize>],
    sources: &[String],
) -> Option<Inferred> {
    let multi = matches!(f.op, RawOp::Add | RawOp::Concat);
    if multi && ins.len() < 2 {
        cx.push(
            Diagnostic::error(
                f.inputs_span.clone().unwrap_or(f.op_span.clone()),
                format!(
                    "`{}` needs at least two inputs, found {}",
                    f.name,
                    ins.len()
                ),
            )
            .label("too few inputs")
            .help("list them: `inputs = [\"a\", \"b\"]`"),
        );
        return None;
    }
    if !multi && ins.len() != 1 {
        cx.push(
            Diagnostic::error(
                f.inputs_span.clone().unwrap_or(f.op_span.clone()),
                format!("`{}` takes one input, found {}", f.name, ins.len()),
            )
            .label("use `add` or `concat` to combine layers"),
        );
        return None;
    }
    let s = &ins[0];
    let src = &sources[0];
    let feat: usize = s.iter().product();
    Some(match &f.op {
        RawOp::Conv2d {
            in_channels,
            out,
            kernel,
            stride,
            padding,
            bias,
        } => {
            let (c, h, w) = spatial(cx, f, s, src)?;
            let out_c = width(cx, out, "out");
            let k = window(cx, &Some(kernel.clone()), 1, 1, "kernel");
            let st = window(cx, stride, 1, 1, "stride");
            let p = window(cx, padding, 0, 0, "padding");
            if let Some(decl) = in_channels {
                if decl.value as usize != c {
                    cx.push(
                        Diagnostic::error(
                            decl.span.clone(),
                            format!(
                                "`{}` declares {} input channels, but {src} produces {c}",
                                f.name, decl.value
                            ),
                        )
                        .label(format!("expected {c}"))
                        .note(format!("{src} outputs shape {}", shape_str(s)))
                        .help(format!("set `in = {c}`, or leave `in` out to infer it")),
                    );
                    return None;
                }
            }
            let (out_c, k, st, p) = (out_c?, k?, st?, p?);
            let (oh, ow) = (
                out_size(cx, f, h, k, st, p, s)?,
                out_size(cx, f, w, k, st, p, s)?,
            );
            let bias = bias.as_ref().is_none_or(|b| b.value);
            let params = layer_params(cx, f, product(&[out_c, c, k, k]), bias.then_some(out_c))?;
            let macs = macs_of(&[out_c, oh, ow, c, k, k]);
            (
                Op::Conv2d {
                    in_channels: c,
                    out_channels: out_c,
                    kernel: k,
                    stride: st,
                    padding: p,
                    bias,
                },
                vec![out_c, oh, ow],
                params,
                macs,
            )
        }
        RawOp::BatchNorm2d {
            features,
            eps,
            momentum,
        } => {
            let (c, h, w) = spatial(cx, f, s, src)?;
            if let Some(decl) = features {
                if decl.value as usize != c {
                    cx.push(
                        Diagnostic::error(
                            decl.span.clone(),
                            format!(
                                "`{}` declares {} features, but {src} produces {c} channels",
                                f.name, decl.value
                            ),
                        )
                        .label(format!("expected {c}"))
                        .help(format!("set `features = {c}`, or leave it out to infer it")),
                    );
                    return None;
                }
            }
            let eps_v = eps.as_ref().map_or(1e-5, |e| e.value);
            if eps_v <= 0.0 {
                let e = eps.as_ref()?;
                cx.push(Diagnostic::error(e.span.clone(), "eps must be > 0").label("not positive"));
                return None;
            }
            let m = match momentum {
                Some(m) if !(0.0..=1.0).contains(&m.value) => {
                    cx.push(
                        Diagnostic::error(
                            m.span.clone(),
                            format!("momentum = {} is out of range", m.value),
                        )
                        .label("expected 0 to 1"),
                    );
                    return None;
                }
                Some(m) => m.value,
                None => 0.1,
            };
            (
                Op::BatchNorm2d {
                    features: c,
                    eps: eps_v,
                    momentum: m,
                },
                s.clone(),
                2 * c,
                macs_of(&[c, h, w]),
            )
        }
        RawOp::MaxPool2d {
            kernel,
            stride,
            padding,
        }
        | RawOp::AvgPool2d {
            kernel,
            stride,
            padding,
        } => {
            let (c, h, w) = spatial(cx, f, s, src)?;
            let k = window(cx, &Some(kernel.clone()), 1, 1, "kernel");
            let st = match k {
                Some(k) => window(cx, stride, k as u64, 1, "stride"),
                None => None,
            };
            let p = window(cx, padding, 0, 0, "padding");
            let (k, st, p) = (k?, st?, p?);
            if 2 * p > k {
                let sp = padding.as_ref()?;
                cx.push(
                    Diagnostic::error(
                        sp.span.clone(),
                        format!("padding {p} is more than half the kernel {k}"),
                    )
                    .label("PyTorch rejects this")
                    .help(format!("use padding <= {}", k / 2)),
                );
                return None;
            }
            let (oh, ow) = (
                out_size(cx, f, h, k, st, p, s)?,
                out_size(cx, f, w, k, st, p, s)?,
            );
            let op = if matches!(f.op, RawOp::MaxPool2d { .. }) {
                Op::MaxPool2d {
                    kernel: k,
                    stride: st,
                    padding: p,
                }
            } else {
                Op::AvgPool2d {
                    kernel: k,
                    stride: st,
                    padding: p,
                }
            };
            (op, vec![c, oh, ow], 0, 0)
        }
        RawOp::GlobalAvgPool => {
            let (c, _, _) = spatial(cx, f, s, src)?;
            (Op::GlobalAvgPool, vec![c], 0, 0)
        }
        RawOp::Flatten => (Op::Flatten, vec![feat], 0, 0),
        RawOp::Linear {
            in_features,
            out,
            bias,
        } => {
            let out_f = width(cx, out, "out");
            if s.len() != 1 {
                let d = Diagnostic::error(
                    f.op_span.clone(),
                    format!(
                        "`{}` needs a flat [features] input, but {src} produces {}",
                        f.name,
                        shape_str(s)
                    ),
                )
                .label("input is not flat")
                .help(format!(
                    "insert `{{ op = \"flatten\" }}` before this layer (it would give [{feat}])"
                ));
                cx.push(d);
                return None;
            }
            if let Some(decl) = in_features {
                if decl.value as usize != feat {
                    cx.push(
                        Diagnostic::error(
                            decl.span.clone(),
                            format!(
                                "`{}` expects {} input features, but {src} produces {feat}",
                                f.name, decl.value
                            ),
                        )
                        .label(format!("declared {}, incoming {feat}", decl.value))
                        .note(format!("{src} outputs shape {}", shape_str(s)))
                        .help(format!("set `in = {feat}`, or leave `in` out to infer it")),
                    );
                    return None;
                }
            }
            let out_f = out_f?;
            let bias = bias.as_ref().is_none_or(|b| b.value);
            (
                Op::Linear {
                    in_features: feat,
                    out_features: out_f,
                    bias,
                },
                vec![out_f],
                layer_params(cx, f, product(&[feat, out_f]), bias.then_some(out_f))?,
                macs_of(&[feat, out_f]),
            )
        }
        RawOp::Dropout { p } => (
            Op::Dropout {
                p: prob(cx, p, 0.5, "p")?,
            },
            s.clone(),
            0,
            0,
        ),
        RawOp::LogSoftmax => {
            if s.len() != 1 {
                cx.push(
                    Diagnostic::error(
                        f.op_span.clone(),
                        format!(
                            "`log_softmax` needs a flat [features] input, but {src} produces {}",
                            shape_str(s)
                        ),
                    )
                    .label("input is not flat")
                    .help("flatten first"),
                );
                return None;
            }
            (Op::LogSoftmax, s.clone(), 0, 0)
        }
        RawOp::Identity | RawOp::Relu | RawOp::Tanh | RawOp::Sigmoid => (
            match f.op {
                RawOp::Relu => Op::Relu,
                RawOp::Tanh => Op::Tanh,
                RawOp::Sigmoid => Op::Sigmoid,
                _ => Op::Identity,
            },
            s.clone(),
            0,
            0,
        ),
        RawOp::Add => {
            for (other, osrc) in ins.iter().zip(sources).skip(1) {
                if other != s {
                    cx.push(
                        Diagnostic::error(f.inputs_span.clone().unwrap_or(f.op_span.clone()), format!("`{}` adds {src} with shape {} to {osrc} with shape {}", f.name, shape_str(s), shape_str(other)))
                            .label("shapes differ")
                            .help("add a 1x1 `conv2d` projection (with the right `stride`) on the shortcut so both shapes agree"),
                    );
                    return None;
                }
            }
            (Op::Add, s.clone(), 0, 0)
        }
        RawOp::Concat => {
            let mut shape = s.clone();
            for (other, osrc) in ins.iter().zip(sources).skip(1) {
                if other.len() != s.len() || other[1..] != s[1..] {
                    cx.push(
                        Diagnostic::error(
                            f.inputs_span.clone().unwrap_or(f.op_span.clone()),
                            format!(
                                "`{}` concatenates {src} with shape {} and {osrc} with shape {}",
                                f.name,
                                shape_str(s),
                                shape_str(other)
                            ),
                        )
                        .label("all but the first dimension must agree"),
                    );
                    return None;
                }
                shape[0] += other[0];
            }
            (Op::Concat, shape, 0, 0)
        }
        // Expanded before inference; never reached.
        RawOp::Vgg { .. } | RawOp::Block { .. } => return None,
    })
}

/// Layers grouped by block prefix, for display.
pub fn prefix_of(name: &str) -> &str {
    name.rsplit_once('.').map_or("", |(p, _)| p)
}
