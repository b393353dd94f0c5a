//! The normalized config text and its hash are the identity of a results file (a resume
//! compares them): these pins were taken before the config had its key table, and must
//! never change for these configs.

use super::Config;
use sha2::{Digest, Sha256};

/// Configs that exercise every key, at and away from its default.
const CASES: &[&str] = &[
    "",
    include_str!("../../configs/quickstart.toml"),
    include_str!("../../configs/paper-depth.toml"),
    include_str!("../../configs/paper-cifar10-d8.toml"),
    include_str!("../../tests/golden/small.toml"),
    "[data]\ndataset = \"synthetic\"\nsynthetic_input_dim = 8\nsubset = \"random\"\nsubset_seed = 3\n\
     [model]\nkind = \"uv\"\nwidth = [100]\n[train]\nbatch_size = 1\nsgd_seeds = [4, 5]\n\
     [grid]\nc = [1.5, 3.0]\n[output]\npath = \"x/y.h5\"\n",
    "[model]\nactivation = \"tanh\"\nparameterization = \"ntk\"\nreadout = \"zero\"\nbias = true\n\
     sigma2_hidden = 1.5\nsigma2_readout = 0.5\nloss_scale = 2.0\nloss = \"cross-entropy\"\n\
     [train]\noptimizer = \"momentum\"\nmomentum = 0.9\nwarmup_steps = 64\ncheckpoint_every = 5\n\
     divergence_loss = 1e3\nprecision = \"f64\"\n",
    "[train]\noptimizer = \"momentum\"\nmomentum = -0.0\n",
    "[train]\noptimizer = \"momentum\"\nmomentum = 0.0\n",
    "[train]\noptimizer = \"adam\"\nadam_beta2 = 0.99\nadam_eps = 1e-6\n[sharpness]\npreconditioned = true\n",
    "[train]\noptimizer = \"adam\"\nadam_beta1 = 0.8\n",
    "[sharpness]\nk = 3\noperator = \"both\"\nbottom = true\nmethod = \"lanczos\"\nmeasure_n = 512\n\
     measure_seed = 2\nevery = 3\ntol = 1e-4\nmax_iter = 50\npower_iters = 7\nwarm_start = false\n",
    "[sharpness]\noperator = \"gauss-newton\"\n",
    "[sharpness]\nprotocol = \"authors-notebook\"\nmethod = \"power\"\n",
    "[grid]\nsearch = \"adaptive\"\nresolution = 0.1\neps_sharp = 0.05\nprobes = 3\n\
     log2_c = { start = 0.5, stop = 3.0, step = 0.5 }\n",
    "[grid]\nsearch = \"adaptive\"\n",
    "[grid]\nlog2_c = { start = 0.0, stop = 1.0, step = 0.5 }\n",
    "[grid]\nc = [4.0, 1.0, 2.0, 2.0]\nstop_after_divergence = true\ninterp_points = 5\n",
    "[train]\noptimizer = \"momentum\"\n[grid]\naxes = { \"train.warmup_steps\" = [0, 64], \
     \"train.momentum\" = [0.0, 0.9], \"model.activation\" = [\"relu\", \"tanh\"] }\n",
    "[train]\nmomentum = 0.5\n[grid]\naxes = { \"train.momentum\" = [0.0, 0.9], \
     \"train.optimizer\" = [\"momentum\"] }\n",
    "[train]\nadam_beta1 = 0.5\n[grid]\naxes = { \"train.adam_beta1\" = [0.8, 0.9], \
     \"train.optimizer\" = [\"adam\"], \"sharpness.protocol\" = [\"fixed-set\"] }\n",
];

/// (SHA-256 of the config text, `config_sha256`) of each case, taken before the key table.
const PINS: &[(&str, &str)] = &[
    (
        "9f43ff6365c1d47dc824f96a08e49db0fa7d13d246d2e28c63d333888915bfa0",
        "ff435b3e6168d2d75822692157a0f11789922d423aefc2a989c2d3cf453e1bc2",
    ),
    (
        "4f284102537c5556fa7aebbaf3b2b21d7e9a46227985f680fe86ff5ff9c77d95",
        "5ecfad4e40020eb250f209bbd680613b19a5b5be1d6bfe6c9f9a8f70a7ad355c",
    ),
    (
        "a2e0b15b6d8402186605b1e6206279b604a6364af91763646eba0b908951d6e0",
        "61a365960a5481ae100e746faea1931500aca5b777f23c1d3397b12a9ee89f1d",
    ),
    (
        "e3845a01bfcb58da8565f87289369460f41c71d2ab05b9e7d5fbdf0072dc6e67",
        "0cb1302e10b4a0d641e89ddda722c984298dc88cf1898bc95270c30e02f070d1",
    ),
    (
        "6c7470d2877bbab096cff0d36a18c048f066569820f5ff5b975770c90f6eb857",
        "e5e0ea582838d00abcacf6ec8d0da249ab741a3082a080cc79246c6cf0e325a9",
    ),
    (
        "cd34c7aa26f4b3a8ca352bcf3413f2a54c20839aafe17c543218156bd632c24d",
        "342227eac5bc9c600abe825a97bdd93b6eed31da3e7eefed641430f3bda5d906",
    ),
    (
        "14192607356a8bda6082b29f4a54c5033e41f20e676f50802d9ef43a5b9ff03d",
        "623fc51cd39e87df11fd131f49c7281670c5f8dec437ca0c94bb4b75fe382cb7",
    ),
    (
        "1c061edd12bf301913e73afd7daa55d4fc20aca404206e6cd529d34fc908de9c",
        "6154acf896e92b61a377feb9d36f9a5acf9fc3cdcf38e9499687e566fb699440",
    ),
    (
        "ee0ec0ed2e69ecd1d631b4b097a412e9b743faef5e1db1740eb5a75380bc4106",
        "04836732f35d5ca463c2edc6cf063355c67c814860051b87cf80e8b18cac7646",
    ),
    (
        "ae55640afc0591f4f7dd00af165f89e189739b15813fe16207681d144448cc6e",
        "129298e842f2d672939e6ca222428033e213993cf55cbea807950f7257821ff6",
    ),
    (
        "76488695ff42d26dd30aee5872969c7f1666e72fe6da5df54fe86261838cd1d1",
        "0d95509a618682489959dba09b8e5083063088e1e454ad6b1635304e9f9d9b70",
    ),
    (
        "4ae52681552a3a893f641b2808a541407ea90c0b4c80aa6ac46c437c4d82b129",
        "352f43f77c69b32c5d8e574da21cfc43f5b24ef7e3ba6710c2e3c87edfaaa06d",
    ),
    (
        "f6a7df21d1b46969280615c8f2ca77d10713797783443d386742055d1bc48b01",
        "57b5f16b8f2874ebeea197bb62a90a11ec4fac771e3931f37756bb3c8c845d16",
    ),
    (
        "b6d7a9054cd7babf6d00076b8c7af198fbbdfb37c702ac7b6cb45eaf9294dcc6",
        "8480de67debc1dc97e647f1dcce940dfa04c629b7ae96f2b265c9f9480af42b0",
    ),
    (
        "21f3e85c5c6f55a85b25ca9823e4210dabb0b0abb9fa7ae83f9b8d4963eec869",
        "42410602ab129b28eee328ab00be99e0e825c4f4460c60ef1c5c90fd7b643f1e",
    ),
    (
        "77eeca6f91819dff10b1c92ee76cc329c380eb7c020fa18b9669f5b8d0c9889b",
        "8c882fff3cb318c03553a2268facb774b86f97a96844290aae2c2e3332f8e191",
    ),
    (
        "7087f10af1443113e3f80d917c19d3383dedea333130f29478a9e6b6fff5827d",
        "6cc465e5bba8018d538162db329c7193ae96c7b094bb490aaec8c960dd8b7fb0",
    ),
    (
        "2edaa11ab7117341b2c23b49da134f29d1d9c7499b1179185447b7b6f0843f73",
        "99666ee80357032cdf39bb83402f8b5c5b1839389f1647918b5facf363a9361d",
    ),
    (
        "7e2537d2de3013ca0d5fbc3b7c50278ae2755caa16f6e9d18dd9073e0847d7a7",
        "5690abeffbd2f2d09d455d7649e8a7f3f73c5186ebc99933237ca4de5d7f6d1f",
    ),
    (
        "5af97be7e2c767db1e1dc329ba4b91660cc139aa75d59a1ba39d4720a93054a3",
        "8482576a69fdc99e91479a933f14444a4715c4bddf838f0cf20b693e07d67324",
    ),
    (
        "9665043eaf29d697f2b6356afc75743ab35ff9301a51565682f0b050909a7d86",
        "7b46af511430c60050be8c06821068be7ea6e5f91df598fbfae8f650a8e9f358",
    ),
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn config_texts_and_hashes_are_pinned() {
    let mut got = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let config = Config::from_toml_str(case).unwrap_or_else(|e| panic!("case {i}: {e}"));
        let (text, sha) = config.identity();
        assert_eq!(Config::from_toml_str(&text).unwrap(), config, "case {i}");
        got.push((hex(&Sha256::digest(text.as_bytes())), sha, text));
    }
    let listing: String = got
        .iter()
        .map(|(t, h, _)| format!("    (\"{t}\", \"{h}\"),\n"))
        .collect();
    assert_eq!(PINS.len(), CASES.len(), "pins to paste:\n{listing}");
    for (i, ((t, h, text), (pt, ph))) in got.iter().zip(PINS).enumerate() {
        assert!(
            t == pt && h == ph,
            "case {i} changed; its text now:\n{text}"
        );
    }
}
