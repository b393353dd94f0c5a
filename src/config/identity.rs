//! The identity of a config: the text a results file records, and the SHA-256 that a
//! resume compares (over the text without what changes no number).

use super::Config;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

impl Config {
    /// The effective config text (`config` attribute) and the hex SHA-256 that identifies
    /// its sweep (`config_sha256`): of the text with `output.path` emptied and
    /// `train.checkpoint_every` at 0, so neither where the file is nor how often runs
    /// checkpoint makes another sweep.
    pub fn identity(&self) -> (String, String) {
        let text = self.to_toml_string();
        let mut hashed = self.clone();
        hashed.output.path = PathBuf::new();
        // How often runs checkpoint changes no number: a resume may change it.
        hashed.train.checkpoint_every = 0;
        let digest = Sha256::digest(hashed.to_toml_string().as_bytes());
        let hex = digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        (text, hex)
    }
}
