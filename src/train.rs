//! One training run.
