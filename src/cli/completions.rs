//! `ratchet completions SHELL` and `ratchet man`: generated from the same
//! clap definitions as `--help` (clap_complete, clap_mangen), so they never
//! drift from the commands.

use clap::CommandFactory;

use crate::cli::{CommandError, CommandResult, Env};
use crate::error::Exit;

/// Print a shell completion script for SHELL on stdout
///
/// Install it, for example:
///   bash:  ratchet completions bash > ~/.local/share/bash-completion/completions/ratchet
///   zsh:   ratchet completions zsh > ~/.zfunc/_ratchet   (with fpath+=(~/.zfunc) in ~/.zshrc)
///   fish:  ratchet completions fish > ~/.config/fish/completions/ratchet.fish
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Print ratchet's man page (roff) on stdout
///
/// Install it, for example:
///   ratchet man > ~/.local/share/man/man1/ratchet.1 && man ratchet
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ManArgs {}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let mut cmd = crate::cli::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "ratchet", &mut out);
    env.ui.data_raw(&String::from_utf8_lossy(&out));
    Ok(Exit::Ok)
}

pub fn man(env: &Env, _args: ManArgs) -> CommandResult {
    let mut out = Vec::new();
    clap_mangen::Man::new(crate::cli::Cli::command()).render(&mut out).map_err(|e| {
        CommandError::new("IO_ERROR", format!("cannot render the man page: {e}"), "report this as a bug")
    })?;
    env.ui.data_raw(&String::from_utf8_lossy(&out));
    Ok(Exit::Ok)
}
