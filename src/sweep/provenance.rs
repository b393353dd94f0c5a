//! Provenance and conventions of a sweep's results file: the canonical config text and
//! its hash, the conventions recorded with the numbers (see the README), the CPU, MPI and
//! Slurm context.

use crate::config::{Config, Schedule};
use crate::store::FileMeta;

/// The CPU model and the SIMD features the program uses.
fn cpu_features() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    #[allow(unused_mut)]
    let mut feats: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") {
            feats.push("avx2");
        }
        if is_x86_feature_detected!("fma") {
            feats.push("fma");
        }
        if is_x86_feature_detected!("avx512f") {
            feats.push("avx512f");
        }
    }
    format!("{model}; {}", feats.join(" "))
}

/// The update rule in words (plain SGD words as files have always had them).
fn optimizer(t: &crate::config::TrainConfig) -> String {
    let rule = t.update_rule().describe();
    if t.warmup_steps == 0 {
        rule
    } else {
        format!(
            "{rule}, linear learning-rate warmup eta_t = (t/{w}) eta for t < {w} (t = 0 first), then eta",
            w = t.warmup_steps
        )
    }
}

/// What `sharpness` (and λ₀) is: the Hessian's top eigenvalue, or with Adam the
/// preconditioned one (the old words otherwise).
fn sharpness(cfg: &Config) -> String {
    let plain = "largest algebraic eigenvalue of the full Hessian of the loss (not Gauss-Newton) on the measurement set";
    if !cfg.train.update_rule().preconditioned() {
        return plain.into();
    }
    format!(
        "Adam's preconditioned sharpness: largest eigenvalue of P^-1 H (computed as D H D, D = P^-1/2) with H the full Hessian of the loss on the measurement set and P Adam's diagonal preconditioner at the state measured, P = (1 - b1^(t+1)) (sqrt(v'/(1 - b2^(t+1))) + eps), v' = b2 v_t + (1 - b2) g_t^2, g_t the measurement-set gradient at theta_t, t updates made (as the next update would apply it; Kalra & Barkeshli 2024); lambda0 uses GI-Adam's v_0 = g_0^2, so P_0 = (1 - b1)(|g_0|/sqrt(1 - b2) + eps); the edge of stability of full-batch Adam is at (2 + 2 b1)/((1 - b1) eta) (Cohen et al. 2022); spectra (k, gauss-newton, bottom) are of the preconditioned operators too; hessian_sharpness: {}",
        if cfg.sharpness.preconditioned {
            format!("the plain Hessian's ({plain})")
        } else {
            "not measured".to_string()
        }
    )
}

/// The estimator of the k = 1 warm-started Lanczos sharpness since the tracked start:
/// each measurement starts from u₁ + 0.02·u₂, the previous measurement's top two Ritz
/// vectors, so that after a crossing of the top two eigenvalues it reports the new top
/// one (`hessian::lanczos_tracked_in`).
pub const TRACKED_ESTIMATOR: &str = "lanczos-tracked-2";

/// The same setting's estimator before it (the previous top Ritz vector alone, which can
/// settle on λ₂ after a crossing): what a file without `sharpness_estimator` used.
pub const WARM_ESTIMATOR: &str = "lanczos-warm-1";

/// The estimator of `sharpness` under one config (one axis point).
fn estimator_of(cfg: &Config) -> &'static str {
    use crate::config::{SharpnessMethod, SharpnessProtocol};
    let s = &cfg.sharpness;
    if s.protocol == SharpnessProtocol::AuthorsNotebook {
        "power-notebook-1"
    } else if s.method == SharpnessMethod::Power {
        "power-1"
    } else if s.k > 1 {
        "block-lanczos-1"
    } else if !s.warm_start {
        "lanczos-cold-1"
    } else {
        TRACKED_ESTIMATOR
    }
}

/// The identifier of the estimator of `sharpness` in a sweep of `cfg` (the convention
/// `sharpness_estimator`): the estimator of every axis point of `grid.axes`, distinct ones
/// joined by ", " in point order. It changes whenever the numbers a setting gives change.
pub fn sharpness_estimator(cfg: &Config) -> String {
    let points = cfg.axis_points().unwrap_or_else(|_| vec![cfg.clone()]);
    let mut names: Vec<&str> = Vec::new();
    for p in &points {
        let e = estimator_of(p);
        if !names.contains(&e) {
            names.push(e);
        }
    }
    names.join(", ")
}

/// The estimator of `sharpness` in a file of config `cfg` whose conventions are
/// `conventions`: its `sharpness_estimator`, or for a file written before estimators were
/// named, the estimator `cfg` had then ([`WARM_ESTIMATOR`] where it now has
/// [`TRACKED_ESTIMATOR`]; the other settings are unchanged).
pub fn recorded_estimator(conventions: &[(String, String)], cfg: &Config) -> String {
    match conventions.iter().find(|(k, _)| k == "sharpness_estimator") {
        Some((_, v)) => v.clone(),
        None => sharpness_estimator(cfg).replace(TRACKED_ESTIMATOR, WARM_ESTIMATOR),
    }
}

/// Whether a resume of a file of config `cfg` (conventions `conventions`) with `runs_left`
/// runs still to train may go on: refused, naming both estimators, when the file's runs
/// were measured by another estimator than this program's and runs remain (finishing them
/// would mix the two in one file). A file with nothing left to train resumes (it gains
/// only what the schema added; its conventions keep naming its own estimator).
pub fn check_resume_estimator(
    conventions: &[(String, String)],
    cfg: &Config,
    runs_left: usize,
) -> Result<(), String> {
    let (file, now) = (
        recorded_estimator(conventions, cfg),
        sharpness_estimator(cfg),
    );
    if file == now || runs_left == 0 {
        return Ok(());
    }
    let named = if conventions.iter().any(|(k, _)| k == "sharpness_estimator") {
        ""
    } else {
        " (the file names none: written before estimators were named)"
    };
    Err(format!(
        "its runs were measured with the sharpness estimator {file}{named}, this program \
         measures with {now}; training its {runs_left} remaining run(s) would mix the two in \
         one file. Sweep into another --out (or --force to start this file over), or finish \
         it with the sharpsweep version that wrote it"
    ))
}

/// The conventions recorded with the results (see SCIENCE.md).
pub fn conventions(cfg: &Config, data_description: &str) -> Vec<(String, String)> {
    let s = &cfg.sharpness;
    let method = match s.method {
        crate::config::SharpnessMethod::Lanczos => format!(
            "Lanczos with full reorthogonalization on exact Hessian-vector products (R-operator); stops at relative residual ||Hv - lambda v||/|lambda| <= {} or {} HVPs; warm start from the previous measurement: {} (k = 1: from u1 + {} u2, its top two Ritz vectors, so that after a crossing of the top two eigenvalues the new top one is reported; the first measurement after initialization starts cold)",
            s.tol, s.max_iter, s.warm_start, crate::hessian::TRACKED_SECOND_WEIGHT
        ),
        crate::config::SharpnessMethod::Power => format!(
            "power iteration, {} iterations, on exact Hessian-vector products; warm start: {}",
            s.power_iters, s.warm_start
        ),
    };
    let method = match s.protocol {
        crate::config::SharpnessProtocol::FixedSet => method,
        crate::config::SharpnessProtocol::AuthorsNotebook => format!(
            "authors-notebook protocol (Kalra & Barkeshli 2023 demo notebook): lambda0 by power iteration ({n} products from one fixed seeded Gaussian start vector, then the Rayleigh quotient of the last iterate: {n} + 1 HVPs) on the first {m} examples of a stream of permutations of the training subset seeded by the SGD seed; each later lambda_t the same way, from the same start vector, on the next SGD minibatch, which the measurement consumes (SGD trains on every other minibatch); loss on the full training subset",
            n = s.power_iters,
            m = s.measure_n
        ),
    };
    let v = |k: &str, v: String| (k.to_string(), v);
    let mut out = vec![
        v("loss", match cfg.model.net.loss {
            crate::model::param::Loss::Mse => format!("MSE: L = alpha/(2 B k) sum_i sum_j (f_ij - y_ij)^2 with alpha = {} (loss_scale), k outputs, one-hot targets; sharpness values are in these units", cfg.model.net.loss_scale),
            crate::model::param::Loss::CrossEntropy => format!("softmax cross-entropy: L = -alpha/B sum_i log softmax(f_i)_(label i), mean over the B examples, with alpha = {} (loss_scale), k outputs, one-hot targets; its Hessian in f is alpha/B (diag p - p p^T) per example; sharpness values are in these units", cfg.model.net.loss_scale),
        }),
        v("sharpness", sharpness(cfg)),
        v("sharpness_method", method),
        v("sharpness_estimator", sharpness_estimator(cfg)),
        v("parameterization", format!(
            "{:?}: sigma2_hidden = {}, sigma2_readout = {}, readout = {:?}, bias = {}, activation = {:?}; sp: W ~ N(0, sigma2/fan_in), h = W a; ntk: W ~ N(0, 1), h = sqrt(sigma2/fan_in) W a",
            cfg.model.net.parameterization, cfg.model.net.sigma2_hidden, cfg.model.net.sigma2_readout, cfg.model.net.readout, cfg.model.net.bias, cfg.model.net.activation)
            + if cfg.model.net.parameterization == crate::model::param::Parameterization::Mup {
                "; mup (Tensor Programs IV, Table 3, one global SGD learning rate): input h = sqrt(n) W x, W ~ N(0, sigma2/(fan_in n)); hidden h = W a, W ~ N(0, sigma2/n); readout f = W a / sqrt(n), W ~ N(0, sigma2/n); n = width"
            } else {
                ""
            }),
        v("preprocessing", "inputs flattened; each example standardized on its own (mean 0, std 1 over its features)".into()),
        v("data", data_description.to_string()),
        v("learning_rate", "eta = c / lambda0, lambda0 = sharpness at initialization of the (depth, width, seed) network, computed once per line".into()),
        v("training", format!(
            "{}, batch {} drawn without replacement from a fresh seeded permutation each epoch (last partial batch dropped), {} steps, precision {:?}; step t = state after t SGD steps; {}",
            optimizer(&cfg.train), cfg.train.batch_size, cfg.train.steps, cfg.train.precision, Schedule::of(cfg).describe())),
        v("divergence", format!("a minibatch loss or measured training loss at state t above {} or not finite; the run stops and diverged_at = t", cfg.train.divergence_loss)),
        v("seeds", "init, SGD-order and Lanczos-start streams derived from (seed, role, depth, width); independent of rank count and task order".into()),
    ];
    if !cfg.grid.axes.is_empty() {
        out.push(v("axes", format!(
            "grid.axes: every (depth, width, seed pair, c) task is run once per point of the product of {} (root attribute `axes`; first axis slowest); a run's config is this config with its point's values set as --set overrides; variable `axis_point` and one variable per axis hold each run's point and values; lambda0 is measured per (depth, width, axis point, seed); the other conventions state this config's own values of the axis keys",
            cfg.grid.axes.iter().map(|(k, v)| format!("{k} ({} values)", v.len())).collect::<Vec<_>>().join(" x ")
        )));
    }
    out
}

/// The provenance written into a new results file by a sweep of `ranks` ranks.
pub fn file_meta(cfg: &Config, data_description: &str, ranks: usize) -> FileMeta {
    let (config_text, config_sha256) = cfg.identity();
    FileMeta {
        config_text,
        config_sha256,
        conventions: conventions(cfg, data_description),
        program_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: option_env!("SHARPSWEEP_GIT_COMMIT")
            .unwrap_or("unknown")
            .to_string(),
        mpi_version: mpi::environment::library_version()
            .map(|s| {
                s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                    .replace(['\n', '\0'], " ")
            })
            .unwrap_or_else(|_| "unknown".into()),
        cpu_features: cpu_features(),
        ranks: ranks as u32,
        slurm_job_id: std::env::var("SLURM_JOB_ID").ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_training_convention_names_the_update_rule() {
        let training = |cfg: &Config| {
            conventions(cfg, "data")
                .into_iter()
                .find(|(k, _)| k == "training")
                .unwrap()
                .1
        };
        let mut cfg = Config::default();
        assert!(training(&cfg).starts_with("plain SGD (no momentum, no weight decay), batch 512"));
        cfg.train.optimizer = crate::config::Optimizer::Momentum;
        cfg.train.momentum = 0.9;
        cfg.train.warmup_steps = 64;
        let t = training(&cfg);
        assert!(
            t.contains("heavy-ball momentum") && t.contains("beta = 0.9"),
            "{t}"
        );
        assert!(t.contains("eta_t = (t/64) eta for t < 64"), "{t}");
    }

    #[test]
    fn the_estimator_is_named_and_an_unnamed_one_reads_as_the_old_warm_start() {
        let cfg = Config::default();
        let conv = conventions(&cfg, "data");
        let named = conv.iter().find(|(k, _)| k == "sharpness_estimator");
        assert_eq!(named.unwrap().1, TRACKED_ESTIMATOR);
        assert_eq!(recorded_estimator(&conv, &cfg), TRACKED_ESTIMATOR);
        // A file written before estimators were named.
        let old: Vec<_> = conv
            .iter()
            .filter(|(k, _)| k != "sharpness_estimator")
            .cloned()
            .collect();
        assert_eq!(recorded_estimator(&old, &cfg), WARM_ESTIMATOR);
        let err = check_resume_estimator(&old, &cfg, 3).unwrap_err();
        assert!(
            err.contains("lanczos-warm-1 (the file names none")
                && err.contains("measures with lanczos-tracked-2")
                && err.contains("3 remaining run(s)"),
            "{err}"
        );
        // Nothing left to train: nothing is mixed.
        assert!(check_resume_estimator(&old, &cfg, 0).is_ok());
        assert!(check_resume_estimator(&conv, &cfg, 3).is_ok());
        // Settings whose numbers did not change read as themselves.
        let mut block = Config::default();
        block.sharpness.k = 4;
        let unnamed: Vec<(String, String)> = Vec::new();
        assert_eq!(recorded_estimator(&unnamed, &block), "block-lanczos-1");
        assert!(check_resume_estimator(&unnamed, &block, 5).is_ok());
        // An axis over warm_start names both of its estimators.
        let axes =
            Config::from_toml_str("[grid]\naxes = { \"sharpness.warm_start\" = [true, false] }\n")
                .unwrap();
        assert_eq!(
            sharpness_estimator(&axes),
            "lanczos-tracked-2, lanczos-cold-1"
        );
        assert_eq!(
            recorded_estimator(&unnamed, &axes),
            "lanczos-warm-1, lanczos-cold-1"
        );
    }

    #[test]
    fn axes_have_a_convention_only_when_given() {
        let plain = Config::default();
        assert!(conventions(&plain, "data").iter().all(|(k, _)| k != "axes"));
        let c = Config::from_toml_str(
            "[train]\noptimizer = \"momentum\"\n[grid]\naxes = { \"train.momentum\" = [0.0, 0.9] }\n",
        )
        .unwrap();
        let conv = conventions(&c, "data");
        let axes = &conv.iter().find(|(k, _)| k == "axes").unwrap().1;
        assert!(axes.contains("train.momentum (2 values)"), "{axes}");
    }
}
