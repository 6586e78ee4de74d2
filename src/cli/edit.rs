use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;
use zeroize::Zeroizing;

use super::{creation_rule, Env, FormatArg};
use coffer::cipher::DataKey;
use coffer::format::Format;
use coffer::fsutil::Target;
use coffer::{mutate, path, sops, Error, Result};

#[derive(Args, Debug)]
pub struct EditArgs {
    /// The encrypted file (a new one is created when it does not exist)
    pub file: PathBuf,
    /// Format of the file (default: from the extension)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub input_type: Option<FormatArg>,
    #[command(flatten)]
    pub keys: super::crypt::KeyFlags,
}

/// No `Debug`: it holds the value, a secret.
#[derive(Args)]
pub struct SetArgs {
    /// The encrypted file
    pub file: PathBuf,
    /// Key path, e.g. '["db"]["port"]'
    pub path: String,
    /// The value: a JSON scalar (5432, true, "text"), a JSON object or array (stored as a
    /// subtree), or plain text. Visible to other users in the process list: prefer
    /// --value-stdin or --value-file for secrets
    #[arg(required_unless_present_any = ["value_stdin", "value_file"], conflicts_with_all = ["value_stdin", "value_file"])]
    pub value: Option<String>,
    /// Read the value from stdin (plain text or a JSON scalar; one final line break is dropped)
    #[arg(long, conflicts_with = "value_file")]
    pub value_stdin: bool,
    /// Read the value from FILE (one final line break is dropped)
    #[arg(long, value_name = "FILE")]
    pub value_file: Option<PathBuf>,
    /// Format of the file (default: from the extension)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub input_type: Option<FormatArg>,
}

#[derive(Args, Debug)]
pub struct UnsetArgs {
    /// The encrypted file
    pub file: PathBuf,
    /// Key path, e.g. '["db"]["old"]'
    pub path: String,
    /// Format of the file (default: from the extension)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub input_type: Option<FormatArg>,
}

fn format_of(file: &Path, t: Option<FormatArg>) -> Format {
    t.map_or_else(|| Format::from_path(file), Into::into)
}

/// Apply a change to the plaintext of an encrypted file and write it back, leaving the
/// file untouched when nothing changed.
fn modify(
    file: &Path,
    format: Format,
    env: &Env,
    change: impl FnOnce(&str, &[u8]) -> Result<Zeroizing<Vec<u8>>>,
) -> Result<()> {
    let name = file.display().to_string();
    // Held from the read to the rename: concurrent writers of the file take turns.
    let mut held = env.hold(file)?;
    let input = held.read()?;
    let (mut opened, covered) = super::open_file(file, format, input, &env.keyring()?, false)?;
    opened.rewrite_future = env.force;
    let plaintext = env.accept(opened.render()?)?;
    let changed = change(&name, &plaintext)?;
    if let Some(sealed) = opened.reencrypt(&changed)? {
        let out = settled(&opened, covered.is_some(), sealed)?;
        held.write(&env.accept(out)?)?;
    }
    Ok(())
}

/// What to write for a changed file: the new ciphertext, or for a file the coffer
/// filter covers the plaintext it decrypts to (the filter encrypts it on `git add`).
fn settled(opened: &sops::Opened, covered: bool, sealed: sops::Sealed) -> Result<sops::Sealed> {
    if covered {
        coffer::git::worktree::checked_out(opened, sealed)
    } else {
        Ok(sealed)
    }
}

pub fn set(args: SetArgs, env: &Env) -> Result<()> {
    let format = format_of(&args.file, args.input_type);
    let steps = path::parse(&args.path)?;
    // A value read from stdin or a file keeps it out of the process list; one final
    // line break (what `echo` and editors add) is not part of it.
    let read = |mut bytes: Vec<u8>, from: &str| -> Result<Zeroizing<String>> {
        if bytes.ends_with(b"\n") {
            bytes.pop();
        }
        String::from_utf8(bytes)
            .map(Zeroizing::new)
            .map_err(|_| Error::Usage(format!("the value from {from} is not UTF-8 text")))
    };
    let value = match (&args.value, args.value_stdin, &args.value_file) {
        (Some(v), ..) => Zeroizing::new(v.clone()),
        (None, true, _) => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| Error::io("<stdin>", e))?;
            read(buf, "stdin")?
        }
        (None, false, Some(f)) => read(
            std::fs::read(f).map_err(|e| Error::io(f, e))?,
            &f.display().to_string(),
        )?,
        (None, false, None) => return Err(Error::Usage("set needs a value".into())),
    };
    modify(&args.file, format, env, |name, plain| {
        mutate::set(name, format, plain, &steps, &value)
    })
}

pub fn unset(args: UnsetArgs, env: &Env) -> Result<()> {
    let format = format_of(&args.file, args.input_type);
    let steps = path::parse(&args.path)?;
    modify(&args.file, format, env, |name, plain| {
        mutate::unset(name, format, plain, &steps)
    })
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn edit(args: EditArgs, config: Option<&Path>, env: &Env) -> Result<()> {
    let file = &args.file;
    let name = file.display().to_string();
    let editor = env
        .get("VISUAL")
        .filter(|v| !v.is_empty())
        .or_else(|| env.get("EDITOR").filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "vi".into());
    let session = Session {
        file,
        format: format_of(file, args.input_type),
        editor: &editor,
        template: b"",
        ignore_mac: false,
        rescue: true,
    };
    let new_file = || {
        let rule = creation_rule(config, file)?;
        let recipients = super::crypt::recipients(&args.keys, rule.as_ref(), env, &name)?;
        let key = DataKey::generate();
        let md = sops::new_metadata(&key, &recipients, env.wrappers(), rule.as_ref(), None)?;
        Ok((key, md))
    };
    if session.run(new_file, env)? == Edited::Unchanged {
        super::say(&format!("{name}: no changes"));
    }
    Ok(())
}

/// What an edit came to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Edited {
    Saved,
    /// The editor left the plaintext as it was: nothing was written (nor created).
    Unchanged,
}

/// One edit of one file in an editor, as both front ends run it.
pub(super) struct Session<'a> {
    pub file: &'a Path,
    pub format: Format,
    /// A shell command line; the plaintext file's path is its last argument.
    pub editor: &'a str,
    /// What a new file starts as.
    pub template: &'a [u8],
    pub ignore_mac: bool,
    /// Keep an edit that cannot be saved in the user's state directory (coffer's own
    /// CLI); otherwise it goes with the private directory.
    pub rescue: bool,
}

impl Session<'_> {
    /// Open the file (or, when it does not exist, take master keys from `new_file`),
    /// run the editor on its plaintext, and write back what changed.
    pub fn run(
        &self,
        new_file: impl FnOnce() -> Result<(DataKey, coffer::metadata::Metadata)>,
        env: &Env,
    ) -> Result<Edited> {
        let (file, format, editor) = (self.file, self.format, self.editor);
        let name = file.display().to_string();
        // The bytes as the editor started on them: at save, a file changed meanwhile gets
        // the edit merged onto its new version.
        let read = std::fs::read(file).map(Zeroizing::new);
        let first = read.as_ref().ok().cloned();
        let (existing, covered) = match read {
            Ok(bytes) => {
                let (mut opened, covered) =
                    super::open_file(file, format, bytes, &env.keyring()?, self.ignore_mac)?;
                opened.rewrite_future = env.force;
                (Some(opened), covered.is_some())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (None, coffer::git::worktree::is_covered(file))
            }
            Err(e) => return Err(Error::io(file, e)),
        };
        // A new file needs its master keys before the user types anything; one the
        // filter covers gets them from the filter, on `git add`.
        let new_file = match &existing {
            None if !covered => Some(new_file()?),
            _ => None,
        };
        let original = match &existing {
            Some(o) => env.accept(o.render()?)?,
            None => Zeroizing::new(self.template.to_vec()),
        };

        // Plaintext only ever sits in a private directory (0700, file 0600) that is
        // removed when `dir` drops, on every return path below.
        let dir = coffer::fsutil::PrivateDir::new("coffer-edit-")?;
        let base = file
            .file_name()
            .map_or_else(|| "secret".into(), |n| n.to_os_string());
        let tmp = dir.path().join(base);
        coffer::fsutil::write_new(&tmp, &original, 0o600)?;

        // Ctrl-C reaches the editor too; coffer waits for it to exit, then cleans up.
        super::on_signal(|| INTERRUPTED.store(true, Ordering::SeqCst));
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("coffer-edit")
            .arg(&tmp)
            .status()
            .map_err(|e| Error::Editor {
                file: name.clone(),
                message: format!("cannot run the editor {editor:?}: {e}"),
                rescued: None,
            })?;
        let edited = Zeroizing::new(std::fs::read(&tmp).map_err(|e| Error::io(&tmp, e))?);
        // An edit that cannot be saved is kept where only the user can read it; if even
        // that fails, the editor's own file stays and the error says where.
        let keep_tmp = std::cell::Cell::new(false);
        let rescue = |message: String| -> Error {
            if edited == original || !self.rescue {
                return Error::Editor {
                    file: name.clone(),
                    message,
                    rescued: None,
                };
            }
            match rescue_edit(env, file, &edited) {
                Ok(path) => Error::Editor {
                    file: name.clone(),
                    message,
                    rescued: Some(path),
                },
                Err(why) => {
                    keep_tmp.set(true);
                    Error::Editor {
                        file: name.clone(),
                        message: format!(
                            "{message}; your edit could not be rescued ({why}): it is still in {}",
                            tmp.display()
                        ),
                        rescued: None,
                    }
                }
            }
        };
        let saved = (|| {
            // Interrupted: nothing is written and the plaintext goes with the private
            // directory (an interrupt is the user stopping, not a failed save).
            if INTERRUPTED.load(Ordering::SeqCst) {
                return Err(Error::Interrupted);
            }
            if !status.success() {
                return Err(rescue(format!(
                    "the editor exited with {status}; the file was not changed"
                )));
            }
            if edited == original {
                return Ok(Edited::Unchanged);
            }
            // The file is held from here to the rename; it may have changed while the
            // editor was open.
            let mut held = match &existing {
                Some(_) => Some(
                    env.hold(file)
                        .map_err(|e| rescue(format!("{e}; the file was not changed")))?,
                ),
                None => None,
            };
            let now = match held.as_mut() {
                Some(h) => Some(h.read().map_err(|e| rescue(e.to_string()))?),
                None => None,
            };
            let theirs = match (&now, &first) {
                (Some(now), Some(first)) if now != first => Some(
                    self.onto_theirs(now.clone(), &original, &edited, env)
                        .map_err(|e| rescue(format!("{e}; the file was not changed")))?,
                ),
                _ => None,
            };
            let result = match (&existing, new_file) {
                (Some(o), _) => {
                    let (o, edited) = match &theirs {
                        Some((t, merged)) => (t, merged),
                        None => (o, &edited),
                    };
                    o.reencrypt(edited)
                        .and_then(|s| match s {
                            Some(sealed) => settled(o, covered, sealed).map(Some),
                            None => Ok(None),
                        })
                        .map(|s| {
                            s.unwrap_or_else(|| sops::Sealed {
                                bytes: now.clone().unwrap_or_default(),
                                fallback: None,
                            })
                        })
                }
                (None, Some((key, mut md))) => {
                    sops::encrypt_plain(&name, format, edited.to_vec(), &key, &mut md)
                }
                // A new covered file: its plaintext, checked as every write is.
                (None, None) => coffer::git::worktree::plain_new(&name, format, edited.to_vec())
                    .and_then(|o| o.into_output(format)),
            };
            let out = result
                .and_then(|sealed| env.accept(sealed))
                .map_err(|e| rescue(format!("{e}; the file was not changed")))?;
            match held {
                Some(h) => h.write(&out),
                None => coffer::fsutil::write_atomic(file, &out, 0o644, None, Target::InPlace),
            }
            .map_err(|e| rescue(format!("{e}; the file was not changed")))?;
            Ok(Edited::Saved)
        })();
        if keep_tmp.get() {
            let _ = dir.keep();
        }
        saved
    }
}

impl Session<'_> {
    /// The file as another writer left it while the editor was open (`now`), opened, and
    /// this edit (from `original` to `edited`) merged onto it by key path, as the git merge
    /// driver merges. A value both changed is a conflict: the edit is refused (and kept).
    fn onto_theirs(
        &self,
        now: Zeroizing<Vec<u8>>,
        original: &[u8],
        edited: &[u8],
        env: &Env,
    ) -> Result<(sops::Opened, Zeroizing<Vec<u8>>)> {
        let name = self.file.display().to_string();
        let (mut theirs, _) = super::open_file(
            self.file,
            self.format,
            now,
            &env.keyring()?,
            self.ignore_mac,
        )?;
        theirs.rewrite_future = env.force;
        let their_plain = theirs.plaintext()?;
        match coffer::git::merge_values(&name, self.format, original, edited, &their_plain, 7) {
            Some((merged, false)) => Ok((theirs, merged)),
            _ => Err(Error::Refused(format!(
                "{name}: it changed while the editor was open, and the edit changes the same values"
            ))),
        }
    }
}

/// Keep an edit that could not be saved where only the user can read it, under a name
/// no other rescue has taken.
fn rescue_edit(env: &Env, file: &Path, content: &[u8]) -> std::result::Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let state = env
        .get("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            env.get("HOME")
                .map(|h| Path::new(&h).join(".local").join("state"))
        })
        .ok_or("neither XDG_STATE_HOME nor HOME is set")?;
    let dir = state.join("coffer").join("rescued");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let stamp = coffer::metadata::now_rfc3339().replace(':', "");
    let base = file
        .file_name()
        .map_or_else(|| "edit".into(), |n| n.to_string_lossy().into_owned());
    let mut last = String::new();
    for n in 0..1000 {
        let name = match n {
            0 => format!("{base}.{stamp}"),
            n => format!("{base}.{stamp}.{n}"),
        };
        let path = dir.join(name);
        match coffer::fsutil::write_new(&path, content, 0o600) {
            Ok(()) => return Ok(path),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
            }
            Err(e) => return Err(e.to_string()),
        }
        last = path.display().to_string();
    }
    Err(format!("every name up to {last} is taken"))
}
