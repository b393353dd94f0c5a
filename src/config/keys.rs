//! The config's keys, each once: its section, type, default, whether the config text
//! carries it at its default, whether `grid.axes` may sweep it, its `--help` line and its
//! README text. The known-keys check, the normalized config text ([`super::text`]),
//! [`axis_keys`], `sharpsweep sweep --help` ([`help_text`]) and the README's
//! "Configuration reference" tables ([`markdown_table`]) are all read from [`KEYS`].
//!
//! The values themselves are the typed fields of [`super::Config`] (serde); the defaults
//! here are their TOML spelling, and a test checks each against `Config::default()`.
//! Adding a key: its field (with its `Default`), one [`Key`] here, its validation, and the
//! README table that the test prints.

/// One config key.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// Full dotted name, `section.key`.
    pub name: &'static str,
    /// The values an enumerated key takes (its TOML strings); empty otherwise.
    pub choices: &'static [&'static str],
    /// The type and range of a key that is not enumerated, as the README shows it.
    pub ty: &'static str,
    /// The default as a TOML value; empty: omitted (no value).
    pub default: &'static str,
    /// Whether the config text holds the key when it is at its default. Keys added after
    /// files existed are left out at their default, so those files keep their
    /// `config_sha256` and resume.
    pub in_text_at_default: bool,
    /// Whether `grid.axes` may sweep the key.
    pub axis: bool,
    /// The keys of an inline-table value (`grid.log2_c`), in the order the text writes them.
    pub fields: &'static [&'static str],
    /// One line for `sharpsweep sweep --help`.
    pub help: &'static str,
    /// The README's "meaning" cell (Markdown).
    pub doc: &'static str,
}

/// The fields a [`Key`] entry leaves out take these values.
const KEY: Key = Key {
    name: "",
    choices: &[],
    ty: "",
    default: "",
    in_text_at_default: true,
    axis: false,
    fields: &[],
    help: "",
    doc: "",
};

/// The sections of a config, in the order of the config text.
pub const SECTIONS: &[&str] = &["data", "model", "train", "sharpness", "grid", "output"];

/// Every config key, by section, in the order of the config text.
pub const KEYS: &[Key] = &[
    Key {
        name: "data.dataset",
        choices: &["fashion-mnist", "mnist", "cifar10", "synthetic"],
        default: r#""fashion-mnist""#,
        help: "the training data",
        doc: "the training data",
        ..KEY
    },
    Key {
        name: "data.dir",
        ty: "path",
        default: r#""/usr/share/datasets/fashion-mnist""#,
        help: "directory of the dataset files (unused for synthetic)",
        doc: "directory of the files: `train-images-idx3-ubyte[.gz]` and `train-labels-idx1-ubyte[.gz]` (IDX sets), `data_batch_1.bin` … `data_batch_5.bin` (CIFAR-10); unused for `synthetic`",
        ..KEY
    },
    Key {
        name: "data.n_train",
        ty: "int ≥ 1",
        default: "4096",
        help: "training examples used (batches and L_t are over them)",
        doc: "training examples used: SGD batches are drawn from them and L_t is the loss over all of them",
        ..KEY
    },
    Key {
        name: "data.subset",
        choices: &["first", "random"],
        default: r#""first""#,
        help: "the first n_train examples of the file, or a seeded random subset",
        doc: "the first `n_train` examples of the file, or a seeded random subset (CIFAR-10: then all five batch files must be present); not used by `synthetic`",
        ..KEY
    },
    Key {
        name: "data.subset_seed",
        ty: "int",
        default: "0",
        help: "seed of the random subset",
        doc: "seed of the random subset",
        ..KEY
    },
    Key {
        name: "data.synthetic_input_dim",
        ty: "int ≥ 2",
        default: "3072",
        help: "input dimension of the synthetic set",
        doc: "input dimension of the synthetic set (each input is standardised over its coordinates, so one coordinate would be 0)",
        ..KEY
    },
    Key {
        name: "data.synthetic_seed",
        ty: "int",
        default: "0",
        help: "seed of the synthetic teacher and inputs",
        doc: "seed of the synthetic teacher and inputs",
        ..KEY
    },
    Key {
        name: "model.kind",
        choices: &["mlp", "uv"],
        default: r#""mlp""#,
        help: "fully connected network, or the two-layer linear uv model",
        doc: "fully connected network, or the two-layer linear uv model (one example x = 1, y = 0)",
        ..KEY
    },
    Key {
        name: "model.depth",
        ty: "list of int 1..2³¹−1, distinct",
        default: "[4]",
        help: "depths swept: weight layers (uv: omit, or [2])",
        doc: "depths swept: number of weight layers (d−1 hidden layers). `uv`: omit it or give `[2]`",
        ..KEY
    },
    Key {
        name: "model.width",
        ty: "list of int 1..2³¹−1, distinct",
        default: "[128]",
        help: "widths swept (uv: the width n)",
        doc: "widths swept (`uv`: the width n)",
        ..KEY
    },
    Key {
        name: "model.activation",
        choices: &["relu", "tanh", "linear"],
        default: r#""relu""#,
        axis: true,
        help: "hidden nonlinearity",
        doc: "hidden nonlinearity",
        ..KEY
    },
    Key {
        name: "model.parameterization",
        choices: &["sp", "ntk", "mup"],
        default: r#""sp""#,
        axis: true,
        help: "standard, NTK or muP parameterization",
        doc: "`sp`: W ~ N(0, σ²/fan_in), h = W a; `ntk`: W ~ N(0, 1), h = √(σ²/fan_in)·W a; `mup`: μP for SGD with one global learning rate (Yang & Hu 2021, *Tensor Programs IV*, Table 3, abc form a = −½, 0, ½ and b = ½ for input, hidden and output weights, c = 0), the input layer's finite fan-in d kept as in sp: input h = √n·W x with W ~ N(0, σ²/(d·n)), hidden as sp, readout f = W a/√n with W ~ N(0, σ²/n) (n = width; at initialization only the readout differs from sp: effective variance σ²/n² instead of σ²/n). No biases with `mup`; a one-layer net is sp's",
        ..KEY
    },
    Key {
        name: "model.readout",
        choices: &["default", "zero"],
        default: r#""default""#,
        axis: true,
        help: "readout initialised like the other layers, or to zero",
        doc: "readout initialised like the other layers (σ² = `sigma2_readout`) or to zero",
        ..KEY
    },
    Key {
        name: "model.bias",
        ty: "bool",
        default: "false",
        axis: true,
        help: "biases in every layer (zero-initialised)",
        doc: "biases in every layer (zero-initialised)",
        ..KEY
    },
    Key {
        name: "model.sigma2_hidden",
        ty: "float > 0",
        default: "2.0",
        axis: true,
        help: "init variance sigma^2 of the hidden layers, the first included",
        doc: "σ² of the hidden layers, including the first",
        ..KEY
    },
    Key {
        name: "model.sigma2_readout",
        ty: "float > 0",
        default: "1.0",
        axis: true,
        help: "init variance sigma^2 of the readout",
        doc: "σ² of the readout",
        ..KEY
    },
    Key {
        name: "model.loss_scale",
        ty: "float > 0",
        default: "1.0",
        axis: true,
        help: "alpha in L = alpha * loss",
        doc: "α in L = α·MSE (or α·cross-entropy): λ scales by α, the trajectories L_t/L₀, λ_t/λ₀ do not change",
        ..KEY
    },
    Key {
        name: "model.loss",
        choices: &["mse", "cross-entropy"],
        default: r#""mse""#,
        in_text_at_default: false,
        axis: true,
        help: "half mean squared error, or softmax cross-entropy",
        doc: r#"the training loss: half the mean squared error over examples and outputs against one-hot targets (the paper's), or softmax cross-entropy −(1/B)·Σ log softmax(f)_label, mean over examples. The HVP is exact for either (for the cross-entropy it includes the softmax Hessian α/B·(diag p − ppᵀ) per example), and so are the Gauss-Newton products. Left out of the config text at `"mse"`. Not with the uv model"#,
        ..KEY
    },
    Key {
        name: "train.batch_size",
        ty: "int ≥ 1",
        default: "512",
        axis: true,
        help: "minibatch size B (<= data.n_train)",
        doc: "minibatch size B; must be ≤ `data.n_train` (sampling without replacement); the uv model uses 1",
        ..KEY
    },
    Key {
        name: "train.steps",
        ty: "int 1..2147483646",
        default: "10",
        help: "steps T per run",
        doc: "SGD steps T per run (arrays have T+1 entries; step counts are stored as 32-bit integers, and the pre-flight memory check counts the (runs × (T+1)) per-step arrays rank 0 holds)",
        ..KEY
    },
    Key {
        name: "train.seeds",
        ty: "list of int, distinct",
        default: "[1]",
        help: "initialization seeds",
        doc: "initialization seeds",
        ..KEY
    },
    Key {
        name: "train.sgd_seeds",
        ty: "list of int, distinct, or omitted",
        default: "",
        help: "SGD-order seeds; omitted: each init seed with itself, given: the product",
        doc: "SGD-order seeds. Omitted: each init seed s is run with SGD seed s. Given: every (seed, sgd_seed) pair of the product is run",
        ..KEY
    },
    Key {
        name: "train.precision",
        choices: &["f32", "f64"],
        default: r#""f32""#,
        help: "precision of the network passes",
        doc: "precision of the network passes (Lanczos recurrences and reductions are f64 either way)",
        ..KEY
    },
    Key {
        name: "train.divergence_loss",
        ty: "float > 0",
        default: "1e5",
        axis: true,
        help: "a loss above this (or not finite) is divergence",
        doc: "a minibatch loss or measured training loss above this, or not finite, is divergence",
        ..KEY
    },
    Key {
        name: "train.optimizer",
        choices: &["sgd", "momentum", "adam"],
        default: r#""sgd""#,
        in_text_at_default: false,
        axis: true,
        help: "the update rule (eta = c/lambda0)",
        doc: "the update rule: SGD θ ← θ − ηg, heavy-ball momentum v ← βv + g, θ ← θ − ηv (v₀ = 0), or Adam (GI-Adam, below). On a quadratic heavy ball is stable for ηλ < 2(1+β), so c_max moves from 2 to 2(1+β): widen `grid.log2_c` accordingly",
        ..KEY
    },
    Key {
        name: "train.momentum",
        ty: "float in [0, 1)",
        default: "0",
        in_text_at_default: false,
        axis: true,
        help: r#"heavy-ball beta of optimizer = "momentum""#,
        doc: r#"β of `optimizer = "momentum"` (an error with `"sgd"`); β = 0 is the plain SGD update (so an axis over β may include it)"#,
        ..KEY
    },
    Key {
        name: "train.warmup_steps",
        ty: "int ≥ 0",
        default: "0",
        in_text_at_default: false,
        axis: true,
        help: "linear warmup of the learning rate over this many steps; 0 = none",
        doc: "linear warmup: η_t = (t/T_w)·c/λ₀ for the steps t = 0 … T_w − 1 (so the first step has η = 0 and leaves θ₀ in place: state 1 is θ₀ bit for bit and gets step 0's measurement again, with `hvps` = 0, rather than a second estimate of λ₀ that could exceed it by the tolerance; not with Adam, whose preconditioner moves), then c/λ₀; 0 = none",
        ..KEY
    },
    Key {
        name: "train.adam_beta1",
        ty: "float in [0, 1)",
        default: "0.9",
        in_text_at_default: false,
        axis: true,
        help: r#"Adam's beta1 (optimizer = "adam")"#,
        doc: r#"Adam's β₁ (an error unless `optimizer = "adam"`)"#,
        ..KEY
    },
    Key {
        name: "train.adam_beta2",
        ty: "float in [0, 1)",
        default: "0.999",
        in_text_at_default: false,
        axis: true,
        help: "Adam's beta2",
        doc: "Adam's β₂",
        ..KEY
    },
    Key {
        name: "train.adam_eps",
        ty: "float > 0",
        default: "1e-8",
        in_text_at_default: false,
        axis: true,
        help: "Adam's epsilon",
        doc: "Adam's ε",
        ..KEY
    },
    Key {
        name: "train.checkpoint_every",
        ty: "int ≥ 0",
        default: "0",
        in_text_at_default: false,
        help: "save a checkpoint every this many steps (0: never); not hashed",
        doc: r#"every this many steps a run of a sweep saves a checkpoint (θ, the optimizer's state, the minibatch stream's position, the record so far, the warm-start eigenvectors) to `FILE.checkpoints/`; a drain stops runs at their next checkpoint, and `--resume` continues them bit for bit (see "Resuming"); 0 = none. Not part of `config_sha256`: a resume may change it"#,
        ..KEY
    },
    Key {
        name: "train.loss_every",
        ty: "int ≥ 0",
        default: "1",
        in_text_at_default: false,
        help: "measure the training loss every this many steps (0: only with the sharpness)",
        doc: "the loss on the training set (one forward pass over it) is measured every this many steps, at the last step and wherever the sharpness is; 0 = only where the sharpness is. Unmeasured steps are NaN in `loss` ([Long runs](#long-runs-the-measurement-schedule)). Left out of the config text at 1",
        ..KEY
    },
    Key {
        name: "sharpness.method",
        choices: &["lanczos", "power"],
        default: r#""lanczos""#,
        axis: true,
        help: "Lanczos, or plain power iteration",
        doc: "Lanczos with full reorthogonalization, or plain power iteration (the authors' method)",
        ..KEY
    },
    Key {
        name: "sharpness.measure_n",
        ty: "int ≥ 1",
        default: "4096",
        help: "size of the fixed measurement set",
        doc: "size of the fixed measurement set, a seeded subset of the training subset (all of it when `n_train` ≤ `measure_n`)",
        ..KEY
    },
    Key {
        name: "sharpness.measure_seed",
        ty: "int",
        default: "0",
        help: "seed of the measurement-set draw",
        doc: "seed of the measurement-set draw",
        ..KEY
    },
    Key {
        name: "sharpness.every",
        ty: "int ≥ 1",
        default: "1",
        help: "measure the sharpness every this many steps (after dense_steps)",
        doc: "after the first `dense_steps` steps, measure the sharpness (and its spectra) every this many steps, and at the last step; unmeasured steps are NaN (`hvps` −1). Must be 1 with `per_decade` > 0",
        ..KEY
    },
    Key {
        name: "sharpness.dense_steps",
        ty: "int ≥ 0",
        default: "0",
        in_text_at_default: false,
        help: "measure the sharpness at every step t <= this, then sparser",
        doc: "measure the sharpness at every step t ≤ this (the early window of a long run), then every `every` steps or `per_decade` log-spaced; 0 = no dense part. Left out of the config text at 0",
        ..KEY
    },
    Key {
        name: "sharpness.per_decade",
        ty: "int 0..1000",
        default: "0",
        in_text_at_default: false,
        help: "after dense_steps, N log-spaced sharpness steps per decade (0: every k)",
        doc: "N > 0: after the first `dense_steps` steps, measure the sharpness at the N log-spaced steps per decade t = round(10^(j/N)), j = 0, 1, … (and at the last step) instead of every `every` steps; 0 = off. Left out of the config text at 0",
        ..KEY
    },
    Key {
        name: "sharpness.tol",
        ty: "float in (0, 1)",
        default: "1e-3",
        axis: true,
        help: "Lanczos relative residual tolerance",
        doc: r#"Lanczos stops at relative residual ‖Hv − λv‖/\|λ\| ≤ `tol` (also the power method's reported convergence check)"#,
        ..KEY
    },
    Key {
        name: "sharpness.max_iter",
        ty: "int 1..10⁸",
        default: "100",
        axis: true,
        help: "most Hessian-vector products per Lanczos measurement",
        doc: "most Hessian-vector products per Lanczos measurement",
        ..KEY
    },
    Key {
        name: "sharpness.power_iters",
        ty: "int 1..10⁸",
        default: "20",
        axis: true,
        help: "iterations of the power method",
        doc: "iterations of the power method",
        ..KEY
    },
    Key {
        name: "sharpness.warm_start",
        ty: "bool",
        default: "true",
        axis: true,
        help: "start each measurement from the previous one's eigenvectors",
        doc: "start each measurement from the previous one's: with `k = 1` Lanczos from u₁ + 0.02·u₂, its top two Ritz vectors, so that after a crossing of the top two eigenvalues the new top one is reported (estimator `lanczos-tracked-2`); with `k` > 1 from its k Ritz vectors; with `method = \"power\"` from its eigenvector. The first one after initialization starts from a seeded random vector",
        ..KEY
    },
    Key {
        name: "sharpness.k",
        ty: "int 1..64",
        default: "1",
        in_text_at_default: false,
        help: "eigenvalues per stored spectrum (block Lanczos when > 1)",
        doc: r#"eigenvalues per stored spectrum (`eigenvalues`, `eig_residual`, `gn_eigenvalues` over the `eig` dimension). k = 1: the sharpness's own Lanczos, unchanged. k > 1: the top k of the Hessian by block Lanczos (blocks of k vectors, so eigenvalues of multiplicity up to k are found; thick restarts; warm-started from the previous step's k Ritz vectors; converged when every residual ‖Hv − θv‖ ≤ `tol`·\|θ₁\|), whose top one is then the sharpness"#,
        ..KEY
    },
    Key {
        name: "sharpness.operator",
        choices: &["hessian", "gauss-newton", "both"],
        default: r#""hessian""#,
        in_text_at_default: false,
        help: "whose top-k spectrum is stored",
        doc: "whose top-k spectrum is stored: the Hessian's (`eigenvalues`), the Gauss-Newton matrix Jᵀ(∇²ℓ)J's (`gn_eigenvalues`: exact Gauss-Newton-vector products, the Hessian-vector product without the network's own curvature terms; no dense Jacobian), or both. The sharpness (and λ₀, and so η) is always the Hessian's",
        ..KEY
    },
    Key {
        name: "sharpness.bottom",
        ty: "bool",
        default: "false",
        in_text_at_default: false,
        help: "also the Hessian's smallest eigenvalue",
        doc: "also the Hessian's smallest eigenvalue (`min_eigenvalue`: Lanczos on −H, warm-started), where negative curvature appears",
        ..KEY
    },
    Key {
        name: "sharpness.preconditioned",
        ty: "bool",
        default: "false",
        in_text_at_default: false,
        help: "with Adam: also the plain Hessian's top eigenvalue",
        doc: r#"with `train.optimizer = "adam"` (an error otherwise), whose `sharpness` is the preconditioned one: also measure the plain Hessian's top eigenvalue each time (`hessian_sharpness`), so the file holds both"#,
        ..KEY
    },
    Key {
        name: "sharpness.protocol",
        choices: &["fixed-set", "authors-notebook"],
        default: r#""fixed-set""#,
        in_text_at_default: false,
        axis: true,
        help: "this program's fixed measurement set, or the authors' demo notebook",
        doc: "how the sharpness is measured: on the fixed measurement set by `method` (this program's way), or exactly as the authors' public demo notebook does (below)",
        ..KEY
    },
    Key {
        name: "grid.search",
        choices: &["grid", "adaptive"],
        default: r#""grid""#,
        in_text_at_default: false,
        help: "every c of the grid, or an adaptive search for the critical values",
        doc: r#"`"grid"`: every c of the grid. `"adaptive"`: search each line for its critical values ([Adaptive search](#adaptive-search-for-the-critical-values)); needs `log2_c`, whose range it searches and whose `step` is its coarse scan's step"#,
        ..KEY
    },
    Key {
        name: "grid.log2_c",
        ty: "`{ start, stop, step }` (floats, step > 0, stop ≥ start)",
        default: "{ start = 0.0, stop = 4.0, step = 0.1 }",
        fields: &["start", "stop", "step"],
        help: "c = 2^x for x = start, start+step, ... <= stop (exclusive with c)",
        doc: "c = 2^x for x = start, start+step, … ≤ stop (x rounded to 10 decimals, so x = 1 gives exactly c = 2). Like `c`, every value must be finite and > 0 and no two equal: x in [−1074, 1024), and a step (or an adaptive search's lattice) of at least 1e-10",
        ..KEY
    },
    Key {
        name: "grid.c",
        ty: "list of float > 0",
        default: "",
        help: "explicit c values (exclusive with log2_c)",
        doc: "explicit c values (sorted, duplicates dropped). Give `c` or `log2_c`, not both; giving only `c` disables the default range",
        ..KEY
    },
    Key {
        name: "grid.stop_after_divergence",
        ty: "bool",
        default: "false",
        help: "on each line, skip the c above the first that diverged",
        doc: "on each (depth, width, seed, sgd_seed) line, skip the c above the first one that diverged (skipped runs stay `pending` in the file; the sweep still counts as complete)",
        ..KEY
    },
    Key {
        name: "grid.interp_points",
        ty: "int ≥ 0",
        default: "0",
        help: "points of the loss along theta0 -> theta_T per run (0: none)",
        doc: "points α = 0, 1/(p−1), …, 1 of the loss along θ₀ → θ_T stored per run (needed for c_barrier); 0: none",
        ..KEY
    },
    Key {
        name: "grid.resolution",
        ty: "float > 0",
        default: "0.05",
        in_text_at_default: false,
        help: "adaptive search: bracket width in log2 c",
        doc: "adaptive search only: the width in log₂ c to which every critical value is bracketed. The search's lattice is x = start + k·step/2ʲ with the smallest j ≥ 0 that makes step/2ʲ ≤ `resolution`",
        ..KEY
    },
    Key {
        name: "grid.eps_sharp",
        ty: "float ≥ 0",
        default: "0",
        in_text_at_default: false,
        help: "adaptive search: epsilon of the criterion lambda_t > (1+eps) lambda0",
        doc: "adaptive search only: ε of the sharpness criterion λ_t > (1+ε)·λ₀ that the search resolves (and the default of `analyze --eps-sharp` on its file)",
        ..KEY
    },
    Key {
        name: "grid.probes",
        ty: "int 1..64",
        default: "1",
        in_text_at_default: false,
        help: "adaptive search: points a line tries at once",
        doc: "adaptive search only: points a line tries at once — the coarse scan's batch, and the points placed evenly inside each open bracket per round (1: bisection; 3: quarters). More probes: fewer rounds, more runs",
        ..KEY
    },
    Key {
        name: "grid.axes",
        ty: "table: dotted key → non-empty list of values",
        default: "",
        in_text_at_default: false,
        help: r#"more grid dimensions: { "dotted.key" = [values], ... }"#,
        doc: "more grid dimensions: every (depth, width, seed pair, c) task is run once per point of the cartesian product of the lists ([below](#more-grid-dimensions-gridaxes)). Left out of the config text when omitted",
        ..KEY
    },
    Key {
        name: "output.path",
        ty: "path",
        default: r#""results.h5""#,
        help: "the results file (sweep --out overrides it; not hashed)",
        doc: "the results file; `sweep --out` overrides it. Not part of the config hash",
        ..KEY
    },
];

impl Key {
    /// The section, `train` of `train.momentum`.
    pub fn section(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(s, _)| s)
    }

    /// The key within its section, `momentum` of `train.momentum`.
    pub fn short(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(_, k)| k)
    }

    /// The type as plain text: `"sgd" | "momentum" | "adam"`, or [`Key::ty`].
    pub fn type_text(&self) -> String {
        if self.choices.is_empty() {
            return self.ty.to_string();
        }
        let quoted: Vec<String> = self.choices.iter().map(|c| format!("\"{c}\"")).collect();
        quoted.join(" | ")
    }

    /// The README's type cell.
    fn markdown_type(&self) -> String {
        if self.choices.is_empty() {
            return self.ty.to_string();
        }
        let quoted: Vec<String> = self.choices.iter().map(|c| format!("`\"{c}\"`")).collect();
        quoted.join(" \\| ")
    }

    /// The README's default cell: numbers as they are, other values as code, "omitted".
    fn markdown_default(&self) -> String {
        match self.default.chars().next() {
            None => "omitted".to_string(),
            Some(c) if c.is_ascii_digit() || c == '-' => self.default.to_string(),
            Some(_) => format!("`{}`", self.default),
        }
    }
}

/// The key `section.name` (`None`: not a key).
pub fn find(section: &str, name: &str) -> Option<&'static Key> {
    KEYS.iter()
        .find(|k| k.section() == section && k.short() == name)
}

/// The keys of `section`, in text order.
pub fn keys_of(section: &str) -> impl Iterator<Item = &'static Key> + '_ {
    KEYS.iter().filter(move |k| k.section() == section)
}

/// The keys `grid.axes` may sweep: options of the network, the update rule and the
/// sharpness estimator that change neither the data, the file's dimensions nor the grid's
/// other coordinates (see [`Key::axis`]).
pub fn axis_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().filter(|k| k.axis).map(|k| k.name)
}

/// Whether `grid.axes` may sweep the dotted key `name`.
pub fn is_axis_key(name: &str) -> bool {
    KEYS.iter().any(|k| k.axis && k.name == name)
}

/// Every key with its type, default and help line, by section: `sharpsweep sweep --help`.
pub fn help_text() -> String {
    let mut out = String::from(
        "Config keys (TOML; every key optional, unknown keys rejected; README \"Configuration \
         reference\" has the rules; * marks the keys grid.axes may sweep):\n",
    );
    for section in SECTIONS {
        out.push_str(&format!("  [{section}]\n"));
        for k in keys_of(section) {
            let default = if k.default.is_empty() {
                "omitted"
            } else {
                k.default
            };
            let star = if k.axis { "*" } else { " " };
            out.push_str(&format!(
                "   {star}{}: {}, default {default}\n        {}\n",
                k.short(),
                k.type_text(),
                k.help
            ));
        }
    }
    out
}

/// The key names by section, one line each: `sharpsweep --help`.
pub fn summary_text() -> String {
    let mut out = String::from(
        "Config keys (`sharpsweep sweep --help` gives each one's type, default and meaning):\n",
    );
    for section in SECTIONS {
        let mut line = format!("  {:<12}", format!("[{section}]"));
        for name in keys_of(section).map(Key::short) {
            if line.len() + name.len() >= 90 {
                out.push_str(line.trim_end());
                out.push('\n');
                line = " ".repeat(14);
            }
            line.push_str(name);
            line.push(' ');
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Header of the README's key tables.
const TABLE_HEADER: &str = "| key | type | default | meaning |\n|---|---|---|---|\n";

/// The README's table of the keys of `section` (between its markers).
pub fn markdown_table(section: &str) -> String {
    let mut out = TABLE_HEADER.to_string();
    for k in keys_of(section) {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            k.short(),
            k.markdown_type(),
            k.markdown_default(),
            k.doc
        ));
    }
    out
}

/// The README's markers around the table of `section`.
pub fn readme_markers(section: &str) -> (String, String) {
    (
        format!(
            "<!-- config keys [{section}]: generated from src/config/keys.rs, edit there -->\n"
        ),
        format!("<!-- end of config keys [{section}] -->\n"),
    )
}

/// The README's list of the keys `grid.axes` may sweep (between [`readme_axis_markers`]):
/// one paragraph, wrapped before 92 columns.
pub fn markdown_axis_keys() -> String {
    let mut out = String::new();
    let mut line = String::from("Allowed keys (marked * in `sharpsweep sweep --help`):");
    let names: Vec<&str> = axis_keys().collect();
    for (i, name) in names.iter().enumerate() {
        let sep = if i + 1 == names.len() { "." } else { "," };
        let word = format!("`{name}`{sep}");
        if line.len() + 1 + word.len() > 92 {
            out.push_str(&line);
            out.push('\n');
            line = word;
        } else {
            line.push(' ');
            line.push_str(&word);
        }
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// The README's markers around the list of the keys `grid.axes` may sweep.
pub fn readme_axis_markers() -> (String, String) {
    (
        "<!-- grid.axes keys: generated from src/config/keys.rs, edit there -->\n".to_string(),
        "<!-- end of grid.axes keys -->\n".to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{text, Config, ConfigError};

    /// The README's text between the markers `begin` and `end`.
    fn readme_between(begin: &str, end: &str) -> &'static str {
        let readme = include_str!("../../README.md");
        let start = readme
            .find(begin)
            .unwrap_or_else(|| panic!("README.md has the marker {begin}"))
            + begin.len();
        let stop = start
            + readme[start..]
                .find(end)
                .unwrap_or_else(|| panic!("README.md has the marker {end}"));
        &readme[start..stop]
    }

    /// The README's table of each section is [`markdown_table`], between its markers: edit
    /// [`KEYS`], then paste the table this test prints.
    #[test]
    fn readme_key_tables_match_the_key_table() {
        for section in SECTIONS {
            let (begin, end) = readme_markers(section);
            let expected = markdown_table(section);
            assert!(
                readme_between(&begin, &end) == expected,
                "README.md's [{section}] table differs from config::keys::KEYS; it should \
                 read:\n\n{expected}"
            );
        }
    }

    /// The README's list of `grid.axes` keys is [`markdown_axis_keys`], between its
    /// markers: edit [`Key::axis`] in [`KEYS`], then paste the text this test prints.
    #[test]
    fn readme_axis_keys_match_the_key_table() {
        let (begin, end) = readme_axis_markers();
        let expected = markdown_axis_keys();
        assert!(
            readme_between(&begin, &end) == expected,
            "README.md's grid.axes keys differ from config::keys::KEYS; they should read:\n\n\
             {expected}"
        );
        for name in axis_keys() {
            assert!(expected.contains(&format!("`{name}`")), "{name}");
        }
        assert!(expected.lines().all(|l| l.len() <= 92), "{expected}");
    }

    /// A config with every key present: the optional ones given.
    fn every_key() -> toml::Table {
        let mut full = Config::default();
        full.grid.c = Some(vec![1.0]);
        full.train.sgd_seeds = Some(vec![1]);
        full.grid.axes.insert("train.momentum".into(), vec![]);
        toml::Table::try_from(&full).unwrap()
    }

    #[test]
    fn the_table_has_every_field_of_the_config_once() {
        let full = every_key();
        let mut serde_keys = Vec::new();
        for (section, value) in &full {
            assert!(SECTIONS.contains(&section.as_str()), "{section}");
            for key in value.as_table().unwrap().keys() {
                serde_keys.push(format!("{section}.{key}"));
            }
        }
        let mut table_keys: Vec<String> = KEYS.iter().map(|k| k.name.to_string()).collect();
        table_keys.sort();
        serde_keys.sort();
        let mut deduped = table_keys.clone();
        deduped.dedup();
        assert_eq!(deduped, table_keys, "a key is in the table twice");
        assert_eq!(table_keys, serde_keys);
        for k in KEYS {
            assert!(!k.help.is_empty() && !k.doc.is_empty(), "{}", k.name);
            assert!(k.choices.is_empty() != k.ty.is_empty(), "{}", k.name);
            // An inline table's fields are the struct's.
            if let Some(toml::Value::Table(t)) = text::value_of(&full, k) {
                if !k.fields.is_empty() {
                    let mut fields = k.fields.to_vec();
                    fields.sort();
                    assert_eq!(t.keys().collect::<Vec<_>>(), fields, "{}", k.name);
                }
            }
        }
    }

    /// Numbers compared as numbers (the table writes `0` for a float 0.0).
    fn same_number_or_value(a: &toml::Value, b: &toml::Value) -> bool {
        match (
            a.as_float().or(a.as_integer().map(|i| i as f64)),
            b.as_float().or(b.as_integer().map(|i| i as f64)),
        ) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        }
    }

    #[test]
    fn the_table_defaults_are_the_config_defaults() {
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for k in KEYS {
            let serde_default = text::value_of(&defaults, k);
            if k.default.is_empty() {
                let omitted = match serde_default {
                    None => true,
                    Some(toml::Value::Table(t)) => t.is_empty(),
                    Some(_) => false,
                };
                assert!(
                    omitted,
                    "{}: the table says omitted, serde has {serde_default:?}",
                    k.name
                );
                continue;
            }
            let parsed: toml::Table = format!("v = {}", k.default)
                .parse()
                .unwrap_or_else(|e| panic!("{}: default {}: {e}", k.name, k.default));
            let want = serde_default.unwrap_or_else(|| panic!("{}: no serde default", k.name));
            assert!(
                same_number_or_value(&parsed["v"], want),
                "{}: table default {} but Config::default() has {want}",
                k.name,
                k.default
            );
        }
    }

    #[test]
    fn every_choice_is_a_value_of_its_key() {
        for k in KEYS.iter().filter(|k| !k.choices.is_empty()) {
            for choice in k.choices {
                let text = format!("[{}]\n{} = \"{choice}\"\n", k.section(), k.short());
                // Validation may refuse the value alone; the type must accept it.
                if let Err(
                    ConfigError::BadValue { message, .. }
                    | ConfigError::UnknownKey { key: message, .. },
                ) = Config::from_toml_str(&text)
                {
                    panic!("{}: {choice:?} is not accepted: {message}", k.name);
                }
            }
            let text = format!("[{}]\n{} = \"no-such-value\"\n", k.section(), k.short());
            let err = Config::from_toml_str(&text).unwrap_err();
            assert!(
                matches!(err, ConfigError::BadValue { .. }),
                "{}: {err}",
                k.name
            );
        }
    }

    #[test]
    fn help_lists_every_key() {
        let help = help_text();
        for k in KEYS {
            let listed = help.lines().any(|l| {
                l.trim_start_matches([' ', '*'])
                    .starts_with(&format!("{}: ", k.short()))
            });
            assert!(listed, "{} in:\n{help}", k.name);
        }
        let summary = summary_text();
        for section in SECTIONS {
            assert!(summary.contains(&format!("[{section}]")), "{summary}");
        }
    }
}
