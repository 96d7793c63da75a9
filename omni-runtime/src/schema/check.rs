//! Kept versions: the schemas of released builds, one file each, that the current schema must
//! stay compatible with.

use std::fmt;
use std::path::{Path, PathBuf};

use super::compare::{Change, compare};
use super::model::{Schema, SchemaError};
use crate::Protocol;

/// The environment variable that makes [`check`] record the current schema: `record`.
pub const RECORD_VAR: &str = "OMNI_SCHEMA";

/// Checks protocol `P` against the kept versions in `dir` (relative to the crate's
/// `CARGO_MANIFEST_DIR`), for a test in the app's own suite:
///
/// ```no_run
/// #[omni::protocol]
/// pub enum Msg {
///     #[client]
///     Ask(String),
///     #[server]
///     Answer(String),
/// }
///
/// #[test]
/// fn protocol_stays_compatible() {
///     omni::schema::check::<Msg>("protocol");
/// }
/// ```
///
/// `dir` holds one `<id>.json` per released version, written by [`Schema::to_json`]. The
/// check panics, listing every breaking change, when the current schema breaks against any of
/// them. When the current schema is not kept yet it passes and prints how to keep it: run the
/// tests with `OMNI_SCHEMA=record` (when releasing), which writes `<id>.json` and creates
/// `dir` if needed. A version no build serves any more is retired by deleting its file.
///
/// # Panics
///
/// When the current schema breaks against a kept version, or a kept file cannot be read.
pub fn check<P: Protocol>(dir: impl AsRef<Path>) {
    let root = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(PathBuf::new, PathBuf::from);
    let dir = root.join(dir);
    let record = std::env::var(RECORD_VAR).is_ok_and(|value| value == "record");
    match check_schema(&P::schema(), &dir, record) {
        Ok(checked) => {
            if let Some(note) = checked.note(&dir) {
                eprintln!("{note}");
            }
        }
        Err(err) => panic!("{err}"),
    }
}

/// What [`check_schema`] found when nothing broke.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checked {
    /// The current schema's id.
    pub id: String,
    /// Whether the current schema was kept already.
    pub kept: bool,
    /// Whether it was written now.
    pub recorded: bool,
    /// The other kept versions it was compared with, sorted.
    pub compared: Vec<String>,
}

impl Checked {
    /// What to tell the user: how to keep a schema that is not kept, or that it was written.
    fn note(&self, dir: &Path) -> Option<String> {
        let file = dir.join(format!("{}.json", self.id));
        if self.recorded {
            Some(format!(
                "omni: recorded schema {} in {}",
                self.id,
                file.display()
            ))
        } else if !self.kept {
            Some(format!(
                "omni: schema {} is not kept in {}; when releasing it, run the tests with \
                 {RECORD_VAR}=record to write {}",
                self.id,
                dir.display(),
                file.display()
            ))
        } else {
            None
        }
    }
}

/// Why [`check_schema`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckError {
    /// The directory or a file in it could not be read or written.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A kept file is not a schema document.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: SchemaError,
    },
    /// A kept file's name is not the id of the schema it holds (it was edited by hand).
    Misnamed {
        /// The file.
        path: PathBuf,
        /// The id of what it holds.
        id: String,
    },
    /// The current schema breaks against kept versions.
    Breaking {
        /// The protocol's name.
        name: String,
        /// The current schema's id.
        id: String,
        /// Each kept version it breaks against, with the breaking changes.
        against: Vec<(String, Vec<Change>)>,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            CheckError::Unreadable { path, source } => write!(f, "{}: {source}", path.display()),
            CheckError::Misnamed { path, id } => write!(
                f,
                "{} holds schema {id}, not the one its name says; restore it, or record the \
                 schema again under its own id",
                path.display()
            ),
            CheckError::Breaking { name, id, against } => {
                writeln!(
                    f,
                    "protocol `{name}` (schema {id}) breaks against {} kept version{}:",
                    against.len(),
                    if against.len() == 1 { "" } else { "s" }
                )?;
                for (kept, changes) in against {
                    writeln!(f, "  against {kept}:")?;
                    for change in changes {
                        writeln!(f, "    - {change}")?;
                    }
                }
                write!(
                    f,
                    "Make the change compatible (see the table in omni's docs/PROTOCOL.md), or, \
                     once no running build uses a version above, retire it by deleting its file."
                )
            }
        }
    }
}

impl std::error::Error for CheckError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckError::Io { source, .. } => Some(source),
            CheckError::Unreadable { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// [`check`] without the environment: compares `current` with every `*.json` in `dir`, and
/// writes `current` there first when `record` is set.
pub fn check_schema(current: &Schema, dir: &Path, record: bool) -> Result<Checked, CheckError> {
    let id = current.id();
    let own = dir.join(format!("{id}.json"));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| CheckError::Io { path, source }
    };
    let mut recorded = false;
    if record && !own.exists() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        std::fs::write(&own, current.to_json()).map_err(io(&own))?;
        recorded = true;
    }
    let mut kept = false;
    let mut compared = Vec::new();
    let mut against = Vec::new();
    for (path, schema) in read_dir(dir)? {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let held = schema.id();
        if held != stem {
            return Err(CheckError::Misnamed { path, id: held });
        }
        if held == id {
            kept = true;
            continue;
        }
        let breaking: Vec<Change> = compare(&schema, current)
            .changes
            .into_iter()
            .filter(Change::is_breaking)
            .collect();
        if !breaking.is_empty() {
            against.push((held.clone(), breaking));
        }
        compared.push(held);
    }
    if !against.is_empty() {
        return Err(CheckError::Breaking {
            name: current.name.clone(),
            id,
            against,
        });
    }
    Ok(Checked {
        id,
        kept: kept && !recorded,
        recorded,
        compared,
    })
}

/// The schemas kept in `dir`, by file, sorted by name; none when `dir` does not exist.
fn read_dir(dir: &Path) -> Result<Vec<(PathBuf, Schema)>, CheckError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CheckError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| CheckError::Io {
                path: dir.to_owned(),
                source,
            })?
            .path();
        if path.extension().is_some_and(|ext| ext == "json") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|source| CheckError::Io {
                path: path.clone(),
                source,
            })?;
            match Schema::from_json(&text) {
                Ok(schema) => Ok((path, schema)),
                Err(source) => Err(CheckError::Unreadable { path, source }),
            }
        })
        .collect()
}

/// The schemas of the versions `P` keeps (`#[omni::protocol(schemas = "dir")]` embeds them),
/// for a server deciding which clients it still serves.
pub fn kept<P: Protocol>() -> Result<Vec<Schema>, SchemaError> {
    P::kept()
        .iter()
        .map(|text| Schema::from_json(text))
        .collect()
}

/// The ids of the kept versions of `P` that its current schema is compatible with: builds of
/// those versions and this one can talk. The current id is not among them; a kept file that
/// does not read is left out (the [`check`] test reports it).
pub fn compatible<P: Protocol>() -> Vec<String> {
    super::served::<P>().older().map(str::to_owned).collect()
}
