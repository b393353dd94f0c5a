//! The [`SCHEMA`]: every variable of the results file, once.

use super::{stop_code, stop_of_code, Column, Dim, Kind, Role, RunStatus, Var};

const RUN: &[Dim] = &[Dim::Run];
const RUN_STEP: &[Dim] = &[Dim::Run, Dim::Step];
const RUN_STEP_EIG: &[Dim] = &[Dim::Run, Dim::Step, Dim::Eig];

fn one<T>(mut v: Vec<T>) -> Result<T, String> {
    if v.len() == 1 {
        Ok(v.pop().expect("one entry"))
    } else {
        Err(format!("expected one value, got {}", v.len()))
    }
}

fn to_i32(name: &str, v: u32) -> Result<i32, String> {
    i32::try_from(v).map_err(|_| format!("{name} = {v} does not fit in i32"))
}

fn to_u32(name: &str, v: i32) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("{name} = {v}"))
}

pub(super) const STATUS_FLAGS: &[(i8, &str)] =
    &[(0, "pending"), (1, "done"), (2, "diverged"), (3, "failed")];

pub(super) const STOP_FLAGS: &[(i8, &str)] = &[
    (0, "not_measured"),
    (1, "converged"),
    (2, "invariant_subspace"),
    (3, "max_iterations"),
    (4, "fixed_count"),
    (5, "non_finite"),
];

/// Every variable of the results file, in the order they are created (and xarray lists
/// them). Coordinates first, then the grid keys, then what runs produce.
pub static SCHEMA: &[Var] = &[
    Var {
        name: "run",
        dims: RUN,
        kind: Kind::I64,
        fill: -1.0,
        long_name: "run (grid task) index",
        units: "",
        flags: &[],
        doc: "coordinate 0..n−1",
        role: Role::Coordinate(Dim::Run),
    },
    Var {
        name: "step",
        dims: &[Dim::Step],
        kind: Kind::I64,
        fill: -1.0,
        long_name: "SGD steps taken (0 = initialization)",
        units: "",
        flags: &[],
        doc: "coordinate 0..T",
        role: Role::Coordinate(Dim::Step),
    },
    Var {
        name: "interp",
        dims: &[Dim::Interp],
        kind: Kind::F64,
        fill: f64::NAN,
        long_name: "interpolation coefficient alpha of theta_0 -> theta_T",
        units: "1",
        flags: &[],
        doc: "coordinate: the α values of θ₀ + α(θ_T − θ₀) (only with `grid.interp_points` > 0)",
        role: Role::Coordinate(Dim::Interp),
    },
    Var {
        name: "eig",
        dims: &[Dim::Eig],
        kind: Kind::I64,
        fill: -1.0,
        long_name: "rank of an eigenvalue in a measured spectrum (0: the largest)",
        units: "",
        flags: &[],
        doc: "coordinate: 0, 1, …, k−1, the rank of an eigenvalue in the top-k spectra (`sharpness.k`)",
        role: Role::Coordinate(Dim::Eig),
    },
    Var {
        name: "c",
        dims: RUN,
        kind: Kind::F64,
        fill: f64::NAN,
        long_name: "learning-rate multiplier c (eta = c / lambda0)",
        units: "1",
        flags: &[],
        doc: "learning-rate multiplier c",
        role: Role::Key {
            get: |k| Ok(Column::F64(vec![k.c])),
            set: |k, v| {
                k.c = one(v.into_f64()?)?;
                Ok(())
            },
        },
    },
    Var {
        name: "depth",
        dims: RUN,
        kind: Kind::I32,
        fill: -1.0,
        long_name: "number of weight layers",
        units: "",
        flags: &[],
        doc: "number of weight layers d (d − 1 hidden layers)",
        role: Role::Key {
            get: |k| Ok(Column::I32(vec![to_i32("depth", k.depth)?])),
            set: |k, v| {
                k.depth = to_u32("depth", one(v.into_i32()?)?)?;
                Ok(())
            },
        },
    },
    Var {
        name: "width",
        dims: RUN,
        kind: Kind::I32,
        fill: -1.0,
        long_name: "hidden width",
        units: "",
        flags: &[],
        doc: "hidden width w",
        role: Role::Key {
            get: |k| Ok(Column::I32(vec![to_i32("width", k.width)?])),
            set: |k, v| {
                k.width = to_u32("width", one(v.into_i32()?)?)?;
                Ok(())
            },
        },
    },
    Var {
        name: "seed",
        dims: RUN,
        kind: Kind::I64,
        fill: -1.0,
        long_name: "initialization seed",
        units: "",
        flags: &[],
        doc: "initialization seed (a u64 stored as the same 64 bits)",
        role: Role::Key {
            get: |k| Ok(Column::I64(vec![k.seed as i64])),
            set: |k, v| {
                k.seed = one(v.into_i64()?)? as u64;
                Ok(())
            },
        },
    },
    Var {
        name: "sgd_seed",
        dims: RUN,
        kind: Kind::I64,
        fill: -1.0,
        long_name: "SGD order seed",
        units: "",
        flags: &[],
        doc: "SGD-order seed (a u64 stored as the same 64 bits)",
        role: Role::Key {
            get: |k| Ok(Column::I64(vec![k.sgd_seed as i64])),
            set: |k, v| {
                k.sgd_seed = one(v.into_i64()?)? as u64;
                Ok(())
            },
        },
    },
    Var {
        name: "status",
        dims: RUN,
        kind: Kind::I8,
        fill: 0.0,
        long_name: "run status",
        units: "",
        flags: STATUS_FLAGS,
        doc: "**0 pending, 1 done, 2 diverged, 3 failed** (attributes `flag_values`, `flag_meanings`)",
        role: Role::Outcome {
            get: |r| Ok(Column::I8(vec![r.status.code()])),
            set: |r, v| {
                let code = one(v.into_i8()?)?;
                r.status = RunStatus::from_code(code).ok_or(format!("status code {code}"))?;
                Ok(())
            },
        },
    },
    Var {
        name: "diverged_at",
        dims: RUN,
        kind: Kind::I32,
        fill: -1.0,
        long_name: "step whose minibatch loss diverged (-1: none)",
        units: "",
        flags: &[],
        doc: "step t whose minibatch loss (or measured loss) diverged; −1 = did not diverge",
        role: Role::Outcome {
            get: |r| {
                let t = r.diverged_at.map_or(Ok(-1), |t| to_i32("diverged_at", t))?;
                Ok(Column::I32(vec![t]))
            },
            set: |r, v| {
                r.diverged_at = u32::try_from(one(v.into_i32()?)?).ok();
                Ok(())
            },
        },
    },
    Var {
        name: "lambda0",
        dims: RUN,
        kind: Kind::F64,
        fill: f64::NAN,
        long_name: "sharpness at initialization",
        units: "",
        flags: &[],
        doc: "λ₀, sharpness at initialization; NaN while pending",
        role: Role::Outcome {
            get: |r| Ok(Column::F64(vec![r.lambda0])),
            set: |r, v| {
                r.lambda0 = one(v.into_f64()?)?;
                Ok(())
            },
        },
    },
    Var {
        name: "eta",
        dims: RUN,
        kind: Kind::F64,
        fill: f64::NAN,
        long_name: "learning rate c / lambda0",
        units: "",
        flags: &[],
        doc: "η = c/λ₀; NaN while pending",
        role: Role::Outcome {
            get: |r| Ok(Column::F64(vec![r.eta])),
            set: |r, v| {
                r.eta = one(v.into_f64()?)?;
                Ok(())
            },
        },
    },
    Var {
        name: "seconds",
        dims: RUN,
        kind: Kind::F64,
        fill: f64::NAN,
        long_name: "wall-clock seconds",
        units: "s",
        flags: &[],
        doc: "wall-clock seconds of the run; NaN while pending",
        role: Role::Outcome {
            get: |r| Ok(Column::F64(vec![r.seconds])),
            set: |r, v| {
                r.seconds = one(v.into_f64()?)?;
                Ok(())
            },
        },
    },
    Var {
        name: "search_round",
        dims: RUN,
        kind: Kind::I32,
        fill: -1.0,
        long_name: "round of the adaptive search that made the run (-1: fixed grid)",
        units: "",
        flags: &[],
        doc: "with `grid.search = \"adaptive\"`, the round of its line's search that made the run (0: the coarse scan's first points); −1 = a fixed grid's run",
        role: Role::Outcome {
            get: |r| Ok(Column::I32(vec![r.search_round])),
            set: |r, v| {
                r.search_round = one(v.into_i32()?)?;
                Ok(())
            },
        },
    },
    Var {
        name: "message",
        dims: RUN,
        kind: Kind::Str,
        fill: 0.0,
        long_name: "failure message",
        units: "",
        flags: &[],
        doc: "failure message; \"\" unless failed",
        role: Role::Outcome {
            get: |r| Ok(Column::Str(vec![r.message.clone()])),
            set: |r, v| {
                r.message = one(v.into_str()?)?;
                Ok(())
            },
        },
    },
    Var {
        name: "loss",
        dims: RUN_STEP,
        kind: Kind::F64,
        fill: f64::NAN,
        long_name: "training loss L_t",
        units: "",
        flags: &[],
        doc: "L_t on the training subset at the loss steps of the schedule ([Long runs](#long-runs-the-measurement-schedule)): finite or +inf = measured; NaN = not measured (pending, not a loss step, after divergence) or, at `diverged_at` only, a measured non-finite loss",
        role: Role::Outcome {
            get: |r| Ok(Column::F64(r.loss.clone())),
            set: |r, v| {
                r.loss = v.into_f64()?;
                Ok(())
            },
        },
    },
    Var {
        name: "sharpness",
        dims: RUN_STEP,
        kind: Kind::F64,
        fill: f64::NAN,
        long_name: "top Hessian eigenvalue lambda_t",
        units: "",
        flags: &[],
        doc: "λ_t on the measurement set (λ_0 = λ₀); NaN = not measured",
        role: Role::Outcome {
            get: |r| Ok(Column::F64(r.sharpness.clone())),
            set: |r, v| {
                r.sharpness = v.into_f64()?;
                Ok(())
            },
        },
    },
    Var {
        name: "hvps",
        dims: RUN_STEP,
        kind: Kind::I32,
        fill: -1.0,
        long_name: "Hessian-vector products of the measurement (-1: not measured)",
        units: "",
        flags: &[],
        doc: "Hessian-vector products of that measurement; −1 = not measured (not a sharpness step of the schedule, pending, after divergence): the steps with `hvps` ≥ 0 are those whose sharpness was measured",
        role: Role::Outcome {
            get: |r| Ok(Column::I32(r.hvps.clone())),
            set: |r, v| {
                r.hvps = v.into_i32()?;
                Ok(())
            },
        },
    },
    Var {
        name: "residual",
        dims: RUN_STEP,
        kind: Kind::F64,
        fill: f64::NAN,
        long_name: "relative residual of the measurement",
        units: "1",
        flags: &[],
        doc: "its relative residual ‖Hv − λv‖/\\|λ\\|; NaN = not measured",
        role: Role::Outcome {
            get: |r| Ok(Column::F64(r.residual.clone())),
            set: |r, v| {
                r.residual = v.into_f64()?;
                Ok(())
            },
        },
    },
    Var {
        name: "converged",
        dims: RUN_STEP,
        kind: Kind::I8,
        fill: 0.0,
        long_name: "measurement met its tolerance (0/1)",
        units: "",
        flags: &[],
        doc: "1 if the measurement met `tol`, else 0",
        role: Role::Outcome {
            get: |r| Ok(Column::I8(r.converged.iter().map(|&b| i8::from(b)).collect())),
            set: |r, v| {
                r.converged = v.into_i8()?.into_iter().map(|b| b != 0).collect();
                Ok(())
            },
        },
    },
    Var {
        name: "stop_reason",
        dims: RUN_STEP,
        kind: Kind::I8,
        fill: 0.0,
        long_name: "why the eigen-solver of the measurement stopped",
        units: "",
        flags: STOP_FLAGS,
        doc: "why the measurement's eigen-solver stopped: **0 not_measured, 1 converged, 2 invariant_subspace, 3 max_iterations, 4 fixed_count, 5 non_finite** (`flag_values`, `flag_meanings`); step 0 is λ₀'s",
        role: Role::Outcome {
            get: |r| Ok(Column::I8(r.stop_reason.iter().map(|s| stop_code(*s)).collect())),
            set: |r, v| {
                r.stop_reason = v
                    .into_i8()?
                    .into_iter()
                    .map(stop_of_code)
                    .collect::<Result<_, _>>()?;
                Ok(())
            },
        },
    },
    Var {
        name: "eigenvalues",
        dims: RUN_STEP_EIG,
        kind: Kind::F64,
        fill: f64::NAN,
        long_name: "largest Hessian eigenvalues on the measurement set",
        units: "",
        flags: &[],
        doc: "the Hessian's k largest eigenvalues at that step, descending (`eig` 0 is the sharpness; at step 0, with k > 1, measured in the run to the tolerance of λ₀); only entry 0 with `sharpness.operator = \"gauss-newton\"`; NaN = not measured",
        role: Role::Outcome {
            get: |r| Ok(Column::F64(r.eigenvalues.clone())),
            set: |r, v| {
                r.eigenvalues = v.into_f64()?;
                Ok(())
            },
        },
    },
    Var {
        name: "eig_residual",
        dims: RUN_STEP_EIG,
        kind: Kind::F64,
        fill: f64::NAN,
        long_name: "relative residual of each eigenvalue",
        units: "1",
        flags: &[],
        doc: "‖Hv − θv‖/\\|θ₁\\| of each of those eigenpairs (θ₁ the largest); NaN = not measured",
        role: Role::Outcome {
            get: |r| Ok(Column::F64(r.eig_residual.clone())),
            set: |r, v| {
                r.eig_residual = v.into_f64()?;
                Ok(())
            },
        },
    },
    Var {
        name: "gn_eigenvalues",
        dims: RUN_STEP_EIG,
        kind: Kind::F64,
        fill: f64::NAN,
        long_name: "largest Gauss-Newton eigenvalues on the measurement set",
        units: "",
        flags: &[],
        doc: "the k largest eigenvalues of the Gauss-Newton matrix Jᵀ(∇²ℓ)J (exact products, no dense Jacobian), descending; NaN = not measured (`sharpness.operator = \"hessian\"`)",
        role: Role::Outcome {
            get: |r| Ok(Column::F64(r.gn_eigenvalues.clone())),
            set: |r, v| {
                r.gn_eigenvalues = v.into_f64()?;
                Ok(())
            },
        },
    },
    Var {
        name: "min_eigenvalue",
        dims: RUN_STEP,
        kind: Kind::F64,
        fill: f64::NAN,
        long_name: "smallest Hessian eigenvalue on the measurement set",
        units: "",
        flags: &[],
        doc: "the Hessian's smallest (most negative) eigenvalue at that step; NaN = not measured (`sharpness.bottom = false`)",
        role: Role::Outcome {
            get: |r| Ok(Column::F64(r.min_eigenvalue.clone())),
            set: |r, v| {
                r.min_eigenvalue = v.into_f64()?;
                Ok(())
            },
        },
    },
    Var {
        name: "hessian_sharpness",
        dims: RUN_STEP,
        kind: Kind::F64,
        fill: f64::NAN,
        long_name: "top Hessian eigenvalue on the measurement set, not preconditioned",
        units: "",
        flags: &[],
        doc: "with `train.optimizer = \"adam\"`, whose `sharpness` is the preconditioned one: the plain Hessian's top eigenvalue at that step; NaN = not measured (`sharpness.preconditioned = false`, or not Adam)",
        role: Role::Outcome {
            get: |r| Ok(Column::F64(r.hessian_sharpness.clone())),
            set: |r, v| {
                r.hessian_sharpness = v.into_f64()?;
                Ok(())
            },
        },
    },
    Var {
        name: "interp_loss",
        dims: &[Dim::Run, Dim::Interp],
        kind: Kind::F64,
        fill: f64::NAN,
        long_name: "loss along theta_0 -> theta_T at interp",
        units: "",
        flags: &[],
        doc: "loss along θ₀ → θ_T (done runs only); NaN = not computed",
        role: Role::Outcome {
            get: |r| Ok(Column::F64(r.interp_loss.clone())),
            set: |r, v| {
                r.interp_loss = v.into_f64()?;
                Ok(())
            },
        },
    },
];
