//! Registers the conformance suite: every `pub async fn` in `src/suite/*.rs` is a behaviour,
//! and the generated `conformance!` macro runs each of them once per backend. A behaviour
//! written is a behaviour run; there is no list to forget to extend.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    let suite = Path::new("src/suite");
    println!("cargo:rerun-if-changed={}", suite.display());
    let mut files: Vec<_> = fs::read_dir(suite)
        .expect("src/suite is readable")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .filter(|path| path.file_stem().is_some_and(|stem| stem != "mod"))
        .collect();
    files.sort();
    let mut behaviours = Vec::new();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let source = fs::read_to_string(file).expect("suite file is readable");
        behaviours.extend(
            source
                .lines()
                .filter_map(|line| line.strip_prefix("pub async fn "))
                .filter_map(|rest| rest.split(['(', '<']).next())
                .map(|name| name.trim().to_owned()),
        );
    }
    let mut list = String::new();
    for name in &behaviours {
        writeln!(list, "            {name},").expect("writing to a String");
    }
    let generated = format!(
        "/// Expands to one `#[tokio::test]` per behaviour of [`suite`] ({count} behaviours,\n\
         /// found by `build.rs`), on the named backend (`sqlite` or `postgres`).\n\
         #[macro_export]\n\
         macro_rules! conformance {{\n    ($backend:ident) => {{\n        \
         $crate::conformance_tests!($backend:\n{list}        );\n    }};\n}}\n",
        count = behaviours.len(),
    );
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("conformance.rs");
    fs::write(out, generated).expect("OUT_DIR is writable");
}
