//! Files only their owner may read: the data directory (0700), the database and the admin key
//! (0600). Created so; tightened, with a line saying so, when they exist with wider modes.

use std::{io::Write, path::Path};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Sets `mode` on an existing path whose mode grants more; says so.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> std::io::Result<()> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        println!(
            "Tightened {} from {current:o} to {mode:o}: only its owner may read it.",
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// The data directory, created (with its parents) owner-only, or tightened.
pub fn private_dir(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        return tighten(path, 0o700);
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(path)
}

/// A file readable by its owner only: created empty if missing, else tightened.
pub fn private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => tighten(path, 0o600),
        Err(err) => Err(err),
    }
}

/// Writes a new owner-only file with `contents`; fails if it exists.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{contents}")?;
    file.sync_all()
}

/// A SQLite database file and its journal files (SQLite gives those the database's own mode),
/// owner-only. `url` is a `sqlite:` URL; an in-memory database has no file.
pub fn private_sqlite(url: &str) -> std::io::Result<()> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    let path = Path::new(path);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            private_dir(parent)?;
        }
    }
    private_file(path)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut journal = path.as_os_str().to_owned();
        journal.push(suffix);
        let journal = Path::new(&journal);
        if journal.exists() {
            tighten(journal, 0o600)?;
        }
    }
    Ok(())
}
