//! Building the benchmarked binaries with the release profile, each on its own (`-p <package>
//! --bin <binary>`), so its features are exactly those a deployment build resolves.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The workspace's target directory and the package owning each binary.
pub struct Workspace {
    pub target_dir: PathBuf,
    packages: Vec<(String, Vec<String>)>,
}

impl Workspace {
    pub fn load(root: &Path) -> Result<Self, String> {
        let output = Command::new("cargo")
            .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
            .current_dir(root)
            .output()
            .map_err(|e| format!("cargo metadata: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "cargo metadata: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let meta: Value =
            serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
        let target_dir = meta["target_directory"]
            .as_str()
            .ok_or("cargo metadata: no target_directory")?
            .into();
        let packages = meta["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let bins = p["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|t| {
                        t["kind"]
                            .as_array()
                            .is_some_and(|k| k.iter().any(|k| k == "bin"))
                    })
                    .filter_map(|t| t["name"].as_str().map(str::to_owned))
                    .collect();
                (p["name"].as_str().unwrap_or_default().to_owned(), bins)
            })
            .collect();
        Ok(Workspace {
            target_dir,
            packages,
        })
    }

    pub fn package_of(&self, binary: &str) -> Result<&str, String> {
        self.packages
            .iter()
            .find(|(_, bins)| bins.iter().any(|b| b == binary))
            .map(|(p, _)| p.as_str())
            .ok_or_else(|| format!("no workspace package builds a binary {binary}"))
    }

    /// The release binary's path.
    pub fn release(&self, binary: &str) -> PathBuf {
        self.target_dir.join("release").join(binary)
    }

    /// `cargo build --release --locked -p <package> --bin <binary>`, output shown.
    pub fn build(&self, root: &Path, binary: &str) -> Result<PathBuf, String> {
        let package = self.package_of(binary)?;
        eprintln!("renji-bench: cargo build --release -p {package} --bin {binary}");
        let status = Command::new("cargo")
            .args([
                "build",
                "--release",
                "--locked",
                "-p",
                package,
                "--bin",
                binary,
            ])
            .current_dir(root)
            .status()
            .map_err(|e| format!("cargo build: {e}"))?;
        if !status.success() {
            return Err(format!("cargo build of {binary} failed: {status}"));
        }
        Ok(self.release(binary))
    }
}
