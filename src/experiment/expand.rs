//! Expansion: `vgg` shorthands and block instances become plain layers, every layer gets its
//! full name (`stage2.conv1`), and every `inputs` name is resolved to a layer. The result is a
//! flat list in file order; [`super::validate::model`] checks each layer's settings.

use std::collections::HashMap;
use std::ops::Range;

use super::decl::{FormatValue, Tagged};
use super::format::{RawBlock, RawLayer, RawOp, VggItem};
use super::read::{Args, Cx, Sp, Value};
use super::NodeRef;
use crate::diagnostic::{did_you_mean, Diagnostic};

/// Most layers a model may expand to; stops exponential block nesting.
pub const MAX_LAYERS: usize = 10_000;
/// Deepest block nesting.
const MAX_DEPTH: usize = 16;

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
    blocks: &'b [(Sp<String>, RawBlock<'a>)],
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
    /// Blocks whose parameter lists are wrong (reported at the definition).
    bad_blocks: Vec<String>,
    /// An instance of such a block was left out: the model is incomplete.
    skipped: bool,
}

fn short(op: &RawOp<'_>) -> &'static str {
    op.kind().short()
}

/// The longest layer name, in bytes.
pub const MAX_LAYER_NAME_BYTES: usize = 100;

/// Letters, digits and `_`, not starting with a digit, at most [`MAX_LAYER_NAME_BYTES`]; dots
/// separate block scopes (`stage2.conv1`), as in resolved `config.toml` files.
fn valid_name(s: &str) -> bool {
    s.len() <= MAX_LAYER_NAME_BYTES
        && s.split('.').all(|part| {
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
        layers: Vec<Sp<RawLayer<'a>>>,
        scope: usize,
        depth: usize,
    ) -> Option<Ref> {
        let mut prev = self.scopes[scope].input.clone();
        let mut counters: HashMap<&'static str, usize> = HashMap::new();
        let mut last = None;
        for Sp { value: layer, span } in layers {
            if self.too_deep {
                return None;
            }
            if self.flats.len() + self.instances > MAX_LAYERS {
                if !self.too_many {
                    cx.push(
                        Diagnostic::error(
                            span.clone(),
                            format!("the model expands to more than {MAX_LAYERS} layers"),
                        )
                        .label("expansion stopped here"),
                    );
                    self.too_many = true;
                }
                return None;
            }
            let kind = match &layer.op {
                RawOp::Block { block, .. } => block.value.clone(),
                op => short(op).to_string(),
            };
            let local = match &layer.name {
                Some(n) => {
                    if !valid_name(&n.value) || n.value == "input" {
                        cx.push(
                            Diagnostic::error(
                                n.span.clone(),
                                format!(
                                    "invalid layer name `{}`",
                                    crate::report::text::for_terminal(&n.value)
                                ),
                            )
                            .label(format!(
                                "names use letters, digits, `_` and `.`, at most {MAX_LAYER_NAME_BYTES} bytes, and `input` is reserved"
                            )),
                        );
                    }
                    n.clone()
                }
                None => {
                    let k = counters.entry(short(&layer.op)).or_insert(0);
                    *k += 1;
                    let name = if matches!(layer.op, RawOp::Vgg { .. }) && *k == 1 {
                        kind.clone()
                    } else {
                        format!("{kind}{k}")
                    };
                    Sp::new(name, span.clone())
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
            let out = match layer.op {
                RawOp::Vgg { cfg, batch_norm } => {
                    self.expand_vgg(cx, &full, cfg, batch_norm, inputs, inputs_span)
                }
                RawOp::Block { block, args } => {
                    let args = args.map(|a| a.value.0).unwrap_or_default();
                    self.expand_block(cx, &full, block, args, inputs, span.clone(), depth)
                }
                op => {
                    self.flats.push(Flat {
                        name: full,
                        name_span: local.span.clone(),
                        op,
                        op_span: span.clone(),
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
                        padding: Some(Sp::new(super::format::ConvPadding::Size(1), s.clone())),
                        bias: None,
                        init: None,
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
                        RawOp::Relu {},
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
                RawOp::Identity {},
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
        args: Vec<(Sp<String>, &'a Value<'a>)>,
        inputs: Vec<Ref>,
        span: Range<usize>,
        depth: usize,
    ) -> Option<usize> {
        let Some((_, def)) = self.blocks.iter().find(|(n, _)| n.value == block.value) else {
            let mut d = Diagnostic::error(
                block.span.clone(),
                format!("unknown block `{}`", block.value),
            )
            .label("not defined in `[model.blocks]`");
            if let Some(m) = did_you_mean(
                &block.value,
                self.blocks.iter().map(|(n, _)| n.value.as_str()),
            ) {
                d = d.help(format!("did you mean `{m}`?"));
            }
            cx.push(d);
            return None;
        };
        self.instances += 1;
        if self.bad_blocks.contains(&block.value) {
            self.skipped = true;
            return None;
        }
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
        let params: &[Sp<String>] = def.params.as_ref().map_or(&[], |p| &p.value);
        let mut map: Args<'a> = HashMap::new();
        for (k, v) in &args {
            if !params.iter().any(|p| p.value == k.value) {
                let mut d = Diagnostic::error(
                    k.span.clone(),
                    format!("block `{}` has no parameter `{}`", block.value, k.value),
                )
                .label("unknown argument");
                if let Some(m) = did_you_mean(&k.value, params.iter().map(|p| p.value.as_str())) {
                    d = d.help(format!("did you mean `{m}`?"));
                }
                cx.push(d);
            }
            map.insert(k.value.clone(), *v);
        }
        let missing: Vec<&str> = params
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
        let body = Vec::<Sp<RawLayer<'a>>>::from_toml(def.layers.value.0, cx);
        cx.args = saved;
        let body = body?;
        if body.is_empty() {
            cx.push(
                Diagnostic::error(
                    def.layers.span.clone(),
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
        match self.expand(cx, body, scope, depth + 1)? {
            Ref::Node(n) => Some(n),
            _ => None,
        }
    }

    /// Resolves a reference to a node (or the model input), following scope inputs.
    fn resolve(&self, r: &Ref, cx: &mut Cx<'a>, hops: usize) -> Option<NodeRef> {
        match r {
            Ref::Input => Some(NodeRef::Input),
            Ref::Node(n) => Some(NodeRef::Layer(*n)),
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
                    Some((n, _)) => Some(NodeRef::Layer(*n)),
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

/// A layer after expansion and name resolution: its settings are still as written.
#[derive(Debug)]
pub struct Expanded<'a> {
    /// Full name.
    pub name: String,
    /// The operation as written (never `vgg` or `block`).
    pub op: RawOp<'a>,
    /// Resolved inputs.
    pub inputs: Vec<NodeRef>,
    /// Where the layer came from.
    pub spans: LayerSpans,
}

/// Where a checked layer came from in the file, for the graph's diagnostics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerSpans {
    /// The layer's name, or the whole layer when the name was generated.
    pub name: Range<usize>,
    /// The whole layer table (for a `vgg` layer, its `cfg` entry).
    pub op: Range<usize>,
    /// The `inputs` list, when the layer names its inputs.
    pub inputs: Option<Range<usize>>,
}

/// Checks the parameter lists of the block definitions: names that are empty, start with `$`,
/// are not identifiers, or appear twice would otherwise surface as misleading errors at the
/// block's uses. Returns the names of the blocks with such a list: their instances are not
/// expanded (and not blamed).
pub fn check_block_params(blocks: &[(Sp<String>, RawBlock<'_>)], cx: &mut Cx<'_>) -> Vec<String> {
    let mut bad = Vec::new();
    // What `format::PARAM_NAME` (the schema's pattern) says, as code.
    let ident = |s: &str| {
        let mut c = s.chars();
        matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
    };
    for (block, def) in blocks {
        let Some(params) = &def.params else { continue };
        let mut seen: HashMap<&str, &Range<usize>> = HashMap::new();
        for p in &params.value {
            let name = p.value.as_str();
            let d = if name.is_empty() {
                Some(
                    Diagnostic::error(
                        p.span.clone(),
                        format!("block `{}` has an empty parameter name", block.value),
                    )
                    .label("empty name")
                    .help("parameter names are identifiers such as `width`"),
                )
            } else if let Some(bare) = name.strip_prefix('$') {
                Some(
                    Diagnostic::error(
                        p.span.clone(),
                        format!(
                            "parameter `{name}` of block `{}` starts with `$`",
                            block.value
                        ),
                    )
                    .label("write the name without `$`")
                    .help(format!(
                        "declare `\"{bare}\"` in `params`; the body refers to it as `\"${bare}\"`"
                    )),
                )
            } else if !ident(name) {
                Some(
                    Diagnostic::error(
                        p.span.clone(),
                        format!("invalid parameter name `{name}` in block `{}`", block.value),
                    )
                    .label("letters, digits and `_`, not starting with a digit"),
                )
            } else if let Some(first) = seen.get(name) {
                Some(
                    Diagnostic::error(
                        p.span.clone(),
                        format!("block `{}` declares parameter `{name}` twice", block.value),
                    )
                    .label("second declaration")
                    .note(format!("first declared at {}", cx.line_col(first.start))),
                )
            } else {
                seen.insert(name, &p.span);
                None
            };
            if let Some(d) = d {
                cx.push(d);
                bad.push(block.value.clone());
            }
        }
    }
    bad
}

/// Expands `layers` (the model's) with `blocks` in scope, and resolves every input. `None` when
/// anything failed, with every problem reported into `cx`.
pub fn expand<'a>(
    cx: &mut Cx<'a>,
    layers: Sp<Vec<Sp<RawLayer<'a>>>>,
    blocks: &[(Sp<String>, RawBlock<'a>)],
) -> Option<Vec<Expanded<'a>>> {
    let bad_blocks = check_block_params(blocks, cx);
    let errors_before = cx.error_count();
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
        bad_blocks,
        skipped: false,
    };
    let output = ex.expand(cx, layers.value, 0, 0);
    if ex.flats.is_empty() {
        if cx.error_count() > errors_before {
            return None; // e.g. a block that only nests itself: already reported
        }
        cx.push(
            Diagnostic::error(list_span, "the model has no layers")
                .label("empty")
                .help("add layers, e.g. `{ op = \"linear\", out = 10 }`"),
        );
        return None;
    }
    let mut resolved: Vec<Vec<NodeRef>> = Vec::with_capacity(ex.flats.len());
    for f in &ex.flats {
        let mut ins = Vec::new();
        for r in &f.inputs {
            if let Some(x) = ex.resolve(r, cx, 0) {
                ins.push(x);
            }
        }
        resolved.push(ins);
    }
    if cx.error_count() > errors_before || ex.skipped {
        return None;
    }
    // The output is the last layer expanded (a block's last layer, a `vgg`'s last pool).
    debug_assert!(matches!(output, Some(Ref::Node(n)) if n + 1 == ex.flats.len()));
    Some(
        ex.flats
            .into_iter()
            .zip(resolved)
            .map(|(f, inputs)| Expanded {
                name: f.name,
                op: f.op,
                inputs,
                spans: LayerSpans {
                    name: f.name_span,
                    op: f.op_span,
                    inputs: f.inputs_span,
                },
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use crate::experiment::load_str_with;

    /// The messages of the errors in a model with these blocks and layers.
    fn errors(blocks: &str, layers: &str) -> Vec<String> {
        let text = format!(
            "[data]\ndataset = \"synthetic\"\n{blocks}\n[model]\nlayers = [\n{layers}\n]\n"
        );
        let all = load_str_with("t.toml", &text, "t", &[]);
        all[0]
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.message.clone())
            .collect()
    }

    const TAIL: &str = r#"{ op = "flatten" }, { op = "linear", out = 4 },"#;

    #[test]
    fn block_parameter_lists_are_checked() {
        let cases = [
            (r#"["w", "w"]"#, "block `b` declares parameter `w` twice"),
            (r#"["w", ""]"#, "block `b` has an empty parameter name"),
            (r#"["$w"]"#, "parameter `$w` of block `b` starts with `$`"),
            (r#"["1w"]"#, "invalid parameter name `1w` in block `b`"),
        ];
        for (params, want) in cases {
            let blocks =
                format!("[model.blocks.b]\nparams = {params}\nlayers = [{{ op = \"relu\" }}]");
            let layers = format!("{{ op = \"block\", block = \"b\", args = {{ w = 1 }} }}, {TAIL}");
            let e = errors(&blocks, &layers);
            assert!(e.iter().any(|m| m == want), "{params}: {e:?}");
        }
    }

    #[test]
    fn names_are_generated_per_op_and_prefixed_in_blocks() {
        let blocks = "[model.blocks.b]\nlayers = [{ op = \"relu\" }, { op = \"relu\" }]";
        let text = format!(
            "[data]\ndataset = \"synthetic\"\n{blocks}\n[model]\nlayers = [\n{{ op = \"block\", block = \"b\", name = \"s\" }}, {{ op = \"relu\" }}, {TAIL}\n]\n"
        );
        let all = load_str_with("t.toml", &text, "t", &[]);
        let (e, _) = all[0].result.as_ref().expect("valid");
        let names: Vec<&str> = e.model().layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["s.relu1", "s.relu2", "relu1", "flatten1", "fc1"]);
    }

    #[test]
    fn an_unknown_input_is_reported_with_a_suggestion() {
        let layers = format!(
            r#"{{ op = "relu", name = "first" }}, {{ op = "relu", inputs = ["frist"] }}, {TAIL}"#
        );
        assert_eq!(errors("", &layers), ["no layer named `frist`"]);
    }

    #[test]
    fn a_wrong_value_in_one_layer_blames_no_other_layer() {
        // `stride = "2"` is wrong; with a default stride the linear layer's declared width would
        // not match, but that follow-up must not be reported.
        let layers = r#"{ op = "conv2d", out = 2, kernel = 3, stride = "2" }, { op = "flatten" }, { op = "linear", in = 32, out = 4 },"#;
        assert_eq!(
            errors("", layers),
            ["expected a non-negative integer, found string"]
        );
    }
}
