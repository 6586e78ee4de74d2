use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{say, warn, Env};
use coffer::git::{self, Filter};
use coffer::{Error, Result};

#[derive(Subcommand, Debug)]
pub enum GitCommand {
    /// Write coffer's filter, diff and merge drivers into git's config
    #[command(
        after_help = "Examples:\n  coffer git setup           # this repository\n  coffer git setup -y        # and decrypt covered files a clone checked out before setup\n  coffer git setup --hook    # and a pre-commit hook running `coffer git check`\n  coffer git setup --global  # every repository of this user\n  coffer git setup --example # an example .gitattributes and .coffer.yaml\n\nThen mark files in .gitattributes:\n  secrets/** filter=coffer diff=coffer merge=coffer"
    )]
    Setup {
        /// Write to the user's global config instead of this repository's
        #[arg(long)]
        global: bool,
        /// Also install a pre-commit hook that runs `coffer git check`
        #[arg(long)]
        hook: bool,
        /// Print an example .gitattributes and .coffer.yaml, and change nothing
        #[arg(long, conflicts_with_all = ["global", "hook", "yes"])]
        example: bool,
        /// Decrypt covered files checked out before setup (`coffer git unlock`) without asking
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// List files covered by filter=coffer and whether their staged and committed blobs are encrypted
    #[command(after_help = "Example:\n  coffer git status")]
    Status,
    /// Exit 1 if a staged file that filter=coffer covers is not encrypted
    #[command(after_help = "Example (a pre-commit hook):\n  coffer git check")]
    Check,
    /// Decrypt the files a checkout without a key left encrypted
    #[command(after_help = "Example:\n  COFFER_AGE_KEY_FILE=~/key.txt coffer git unlock")]
    Unlock,
    /// Put ciphertext back in the working tree for covered files without local changes
    #[command(after_help = "Example:\n  coffer git lock")]
    Lock,
    /// (git) the long-running filter process
    #[command(hide = true)]
    FilterProcess,
    /// (git) clean one file: plaintext on stdin, sops on stdout
    #[command(hide = true)]
    Clean { path: String },
    /// (git) smudge one file: sops on stdin, plaintext on stdout
    #[command(hide = true)]
    Smudge { path: String },
    /// (git) print a file's plaintext for diffs
    #[command(hide = true)]
    Textconv { file: PathBuf },
    /// (git) merge driver: %O %A %B %L %P
    #[command(hide = true)]
    Merge {
        base: PathBuf,
        ours: PathBuf,
        theirs: PathBuf,
        marker_size: usize,
        path: String,
    },
}

fn filter(env: &Env, config: Option<&Path>) -> Result<Filter> {
    let workdir = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    // Recipients from the environment replace the creation rules for new files.
    // None in the environment means the creation rules decide; a malformed one is an error.
    let from_env = match super::crypt::recipients(&super::crypt::KeyFlags::default(), None, env, "")
    {
        Ok(r) => r,
        Err(Error::NoRecipients { .. }) => coffer::keys::Recipients::default(),
        Err(e) => return Err(e),
    };
    let mut f = Filter::new(
        env.keyring()?,
        env.wrappers().clone(),
        workdir,
        config.map(Path::to_path_buf),
        from_env,
    );
    f.layout = env.layout;
    Ok(f)
}

/// The smudge side of the filter, for whichever git command started it: `git archive`
/// writes what smudge returns into an archive that leaves the repository, so there it keeps
/// ciphertext unless the repository opts in (`git config coffer.archivePlaintext true`).
fn smudge_filter(env: &Env, config: Option<&Path>) -> Result<Filter> {
    let mut f = filter(env, config)?;
    if git_command().is_some_and(|c| c == "archive" || c.starts_with("upload-archive")) {
        let opted_in = git2::Repository::discover(".")
            .and_then(|r| r.config())
            .and_then(|c| c.get_bool("coffer.archivePlaintext"))
            .unwrap_or(false);
        f.keep_ciphertext = !opted_in;
    }
    Ok(f)
}

/// Say once that an archive kept its secrets encrypted.
fn report_kept(f: &Filter) {
    if f.kept > 0 {
        super::say(&format!(
            "git archive: {} encrypted file(s) kept encrypted in the archive (git config coffer.archivePlaintext true exports plaintext)",
            f.kept
        ));
    }
}

/// The git subcommand of the nearest `git` process above this one (git may start the
/// filter through a shell), read from /proc; `None` where that cannot be told.
fn git_command() -> Option<String> {
    let mut pid = std::process::id();
    for _ in 0..4 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may hold spaces: the fields after it count.
        let ppid: u32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{ppid}/cmdline")).ok()?;
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let program = args
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a).to_string());
        if let Some(sub) = program.as_deref().and_then(|p| p.strip_prefix("git-")) {
            return Some(sub.to_string());
        }
        if program.as_deref() == Some("git") {
            return subcommand(&args[1..]);
        }
        pid = ppid;
    }
    None
}

/// The subcommand of git's arguments, past its global options.
fn subcommand(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            // Options that take the next argument.
            "-c" | "-C" | "--git-dir" | "--work-tree" | "--namespace" | "--config-env" => {
                it.next();
            }
            a if a.starts_with('-') => {}
            a => return Some(a.to_string()),
        }
    }
    None
}

/// The layout warnings a single-shot filter run collected.
fn report(f: &Filter) {
    for note in &f.notes {
        warn(note);
    }
}

fn repo() -> Result<(git2::Repository, PathBuf)> {
    let repo = git2::Repository::discover(".")
        .map_err(|e| Error::Git(format!("not in a git repository: {}", e.message())))?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| Error::Git("a bare repository has no working tree".into()))?
        .to_path_buf();
    Ok((repo, workdir))
}

/// Refuse covered files staged in plaintext.
fn plaintext_staged(repo: &git2::Repository, covered: &[git::status::Covered]) -> Result<()> {
    let files: Vec<String> = covered
        .iter()
        .filter(|c| c.index_encrypted == Some(false))
        .map(|c| c.path.clone())
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    Err(Error::PlaintextStaged {
        files,
        filter_on: git::setup::is_set_up(repo),
    })
}

/// Refuse covered files stored otherwise than the creation rules say (`status::weakened`).
fn weakened(
    repo: &git2::Repository,
    covered: &[git::status::Covered],
    config: Option<&Path>,
    head: bool,
) -> Result<()> {
    let workdir = repo.workdir().unwrap_or(Path::new("."));
    let mut rules = coffer::config::RulesCache::new(config.map(Path::to_path_buf));
    let git::status::Weakened { files, ruleless } =
        git::status::weakened(repo, workdir, covered, &mut rules, head)?;
    for f in ruleless {
        warn(&format!(
            "{f}: no creation rule matches it, so its metadata is kept as committed and not checked"
        ));
    }
    if files.is_empty() {
        Ok(())
    } else {
        Err(Error::Weakened { files })
    }
}

fn stdin_bytes() -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("<stdin>", e))?;
    Ok(buf)
}

fn stdout_bytes(data: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(data)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}

pub fn run(cmd: GitCommand, config: Option<&Path>, env: &Env) -> Result<()> {
    match cmd {
        GitCommand::Setup { example: true, .. } => stdout_bytes(git::setup::EXAMPLE.as_bytes()),
        GitCommand::Setup {
            global, hook, yes, ..
        } => {
            let dir = std::env::current_dir().map_err(|e| Error::io(".", e))?;
            if let Some(path) = git::setup::setup(&dir, global, hook)? {
                eprintln!("coffer: installed {}", path.display());
            }
            eprintln!(
                "coffer: git filter, diff and merge drivers configured ({})",
                if global { "global" } else { "this repository" }
            );
            // A clone made before setup checked its covered files out as ciphertext.
            let Ok((repo, workdir)) = repo() else {
                return Ok(());
            };
            let locked = git::status::locked(&repo, &workdir)?;
            match (locked.len(), yes) {
                (0, _) => {}
                (_, true) => {
                    let done = git::status::unlock(&repo, &workdir)?;
                    say(&format!("{} covered file(s) re-checked-out through the filter", done.len()));
                }
                (n, false) => super::hint(&format!(
                    "{n} covered file(s) are still ciphertext in the working tree (checked out before setup): run `coffer git unlock`"
                )),
            }
            Ok(())
        }
        GitCommand::FilterProcess => {
            as_batch_job();
            let mut f = smudge_filter(env, config)?;
            // One line per file, and no hint: the filter takes no flags.
            let mut said = |s: git::process::Said| match s {
                git::process::Said::Warning(w) => warn(&w),
                git::process::Said::Failed(e) => say(&e.to_string()),
            };
            git::process::serve(
                &mut f,
                std::io::stdin().lock(),
                std::io::stdout().lock(),
                &mut said,
            )
            .map_err(|e| Error::io("<git filter protocol>", e))?;
            if let Some(w) = f.locked_warning() {
                warn(&w);
            }
            report_kept(&f);
            Ok(())
        }
        GitCommand::Clean { path } => {
            let mut f = filter(env, config)?;
            let out = f.clean(&path, stdin_bytes()?)?;
            report(&f);
            stdout_bytes(&out)
        }
        GitCommand::Smudge { path } => {
            let mut f = smudge_filter(env, config)?;
            let out = f.smudge(&path, stdin_bytes()?)?;
            report(&f);
            report_kept(&f);
            if let Some(w) = f.locked_warning() {
                warn(&w);
            }
            stdout_bytes(&out)
        }
        GitCommand::Textconv { file } => {
            let bytes = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
            let name = file.display().to_string();
            let mut f = filter(env, config)?;
            let out = f.smudge(&name, bytes)?;
            report(&f);
            stdout_bytes(&out)
        }
        GitCommand::Merge {
            base,
            ours,
            theirs,
            marker_size,
            path,
        } => {
            let mut f = filter(env, config)?;
            let merged = git::merge::merge(&mut f, &base, &ours, &theirs, marker_size, &path)?;
            report(&f);
            if merged {
                Ok(())
            } else {
                // git reads exit 1 as "merged with conflicts".
                Err(Error::Git(format!("{path}: conflicting changes to the same values; the conflict markers are in the working tree")))
            }
        }
        GitCommand::Status => {
            let (repo, _) = repo()?;
            let state = |s: Option<bool>| match s {
                Some(true) => "encrypted",
                Some(false) => "PLAINTEXT",
                None => "-",
            };
            let covered = git::status::covered(&repo)?;
            let mut out = String::from("staged     committed  path\n");
            for c in &covered {
                out.push_str(&format!(
                    "{:<10} {:<10} {}\n",
                    state(c.index_encrypted),
                    state(c.head_encrypted),
                    c.path
                ));
            }
            stdout_bytes(out.as_bytes())?;
            // A listed plaintext blob fails the command, as `check` does.
            plaintext_staged(&repo, &covered)?;
            weakened(&repo, &covered, config, true)?;
            let files: Vec<String> = covered
                .iter()
                .filter(|c| c.head_encrypted == Some(false))
                .map(|c| c.path.clone())
                .collect();
            if !files.is_empty() {
                return Err(Error::PlaintextCommitted { files });
            }
            Ok(())
        }
        GitCommand::Check => {
            let (repo, _) = repo()?;
            let covered = git::status::covered(&repo)?;
            plaintext_staged(&repo, &covered)?;
            weakened(&repo, &covered, config, false)?;
            // A staged change must open: `git add -p` can stage a value's hunk without the
            // MAC's, and such a blob breaks commit and checkout later.
            let keyring = env.keyring()?;
            let files = git::status::staged_changes_that_do_not_open(&repo, &covered, &keyring)?;
            if files.is_empty() {
                Ok(())
            } else {
                Err(Error::StagedBroken { files })
            }
        }
        GitCommand::Unlock => {
            let (repo, workdir) = repo()?;
            let done = git::status::unlock(&repo, &workdir)?;
            eprintln!("coffer: {} file(s) re-checked-out", done.len());
            Ok(())
        }
        GitCommand::Lock => {
            let (repo, workdir) = repo()?;
            let mut f = filter(env, config)?;
            let (locked, modified) = git::status::lock(&mut f, &repo, &workdir)?;
            for m in &modified {
                warn(&format!(
                    "{m}: has changes that are not staged; left as it is"
                ));
            }
            eprintln!("coffer: {} file(s) locked", locked.len());
            Ok(())
        }
    }
}

/// The filter process runs as a batch job (`SCHED_BATCH`), its threads too: they keep
/// their fair share of the processors, but a thread woken does not take the processor
/// from the one that woke it. git writes each request as several small writes (8 for
/// a smudge: each header line, each flush, a content packet's length and its data);
/// each woke the filter, which took git's processor to read a few bytes and gave it
/// back. As a batch job the filter reads the request once git waits for the answer. A
/// checkout of 1,000 covered files on 2 cores took 0.86x the wall time (`farm-bench -n
/// 41`). Where the kernel refuses, nothing changes.
fn as_batch_job() {
    #[cfg(target_os = "linux")]
    // The call reads the one parameter it is given, which outlives it; 0 names the
    // calling thread, whose threads spawned later inherit the policy.
    #[allow(unsafe_code)]
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        let _ = libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
    }
}

/// libgit2 reads a pack through windows it maps (1 GiB each, up to 8 GiB at once on
/// 64-bit) and keeps mapped: a large blob read from a pack would stay in the process
/// beside the document made of its plaintext. Windows of 16 MiB, at most 32 MiB of them
/// at once, let each read's go.
pub(crate) fn small_pack_windows() {
    // libgit2's globals, set before any thread is spawned and any repository opened
    // (the condition its documentation sets); a value it refuses leaves its default.
    #[allow(unsafe_code)]
    unsafe {
        let _ = git2::opts::set_mwindow_size(16 << 20);
        let _ = git2::opts::set_mwindow_mapped_limit(32 << 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subcommand_is_found_past_global_options() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            subcommand(&args(&["archive", "HEAD"])).as_deref(),
            Some("archive")
        );
        assert_eq!(
            subcommand(&args(&["-c", "a=b", "-C", "dir", "--no-pager", "archive"])).as_deref(),
            Some("archive")
        );
        assert_eq!(
            subcommand(&args(&["--git-dir", "x", "checkout", "--", "archive"])).as_deref(),
            Some("checkout")
        );
        assert_eq!(subcommand(&args(&["--version"])), None);
    }
}
