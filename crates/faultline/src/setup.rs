//! What replay and watch both start from: the signature library, its
//! compiled matcher, and the inventory files the user gave.

use std::path::PathBuf;

use anyhow::{Context, Result};
use faultline_correlate::Inventory;
use faultline_matcher::Matcher;
use faultline_signatures::Library;

/// The built-in library plus `signature_dirs`, compiled; every problem
/// in the files is reported at once.
pub(crate) fn library(signature_dirs: &[PathBuf]) -> Result<(Library, Matcher)> {
    let library = Library::load(signature_dirs)
        .map_err(|problems| anyhow::anyhow!("signature problems:\n{problems}"))?;
    let matcher = Matcher::new(library.signatures()).context("compiling the signature library")?;
    Ok((library, matcher))
}

/// The objects of the `kubectl get … -o json` documents in `files`; the
/// error names the file.
pub(crate) fn inventory(files: &[PathBuf]) -> Result<Inventory> {
    let mut inventory = Inventory::default();
    for file in files {
        let bytes =
            std::fs::read(file).with_context(|| format!("reading inventory {}", file.display()))?;
        inventory
            .add_json(&bytes)
            .map_err(|err| anyhow::anyhow!("inventory {}: {err}", file.display()))?;
    }
    Ok(inventory)
}
