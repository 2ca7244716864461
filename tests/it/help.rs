//! The words that point at other commands: every `ratchet …` command line
//! the source, the README and the docs suggest (in hints, notes, `--help`)
//! names commands that exist and flags those commands take (issue 13).

use clap::CommandFactory;

/// Every `` `ratchet …` `` span in `text`, as words.
fn suggested(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, part) in text.split('`').enumerate() {
        // Odd parts are inside backticks.
        if i % 2 == 1 {
            if let Some(rest) = part.strip_prefix("ratchet ") {
                out.push(rest.split_whitespace().map(str::to_string).collect());
            }
        }
    }
    out
}

/// The flags a command line uses that its (sub)command does not take.
fn unknown_flags(root: &clap::Command, words: &[String]) -> Vec<String> {
    let globals: Vec<String> = root
        .get_arguments()
        .filter(|a| a.is_global_set())
        .flat_map(|a| a.get_long().map(|l| format!("--{l}")))
        .chain(["--help".to_string(), "--version".to_string()])
        .collect();
    // The commands entered so far: `a | b` names two siblings.
    let mut path = vec![root];
    let mut bad = Vec::new();
    for w in words {
        let cmd = *path.last().expect("the root stays");
        if w == "|" && path.len() > 1 {
            path.pop();
            continue;
        }
        if let Some(sub) = cmd.find_subcommand(w) {
            path.push(sub);
            continue;
        }
        let Some(flag) = w.strip_prefix("--") else { continue };
        // Placeholders and punctuation around a flag: `--score X`, `--patch FILE;`.
        let name: String = flag.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        if name.is_empty() {
            continue;
        }
        let known =
            cmd.get_arguments().any(|a| a.get_long() == Some(name.as_str())) || globals.contains(&format!("--{name}"));
        if !known {
            bad.push(format!("--{name} (on `{}`)", cmd.get_name()));
        }
    }
    bad
}

fn files(dir: &std::path::Path, ext: &str, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

#[test]
fn every_suggested_command_line_uses_flags_its_command_takes() {
    let root = ratchet::cli::Cli::command();
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = Vec::new();
    files(&base.join("src"), "rs", &mut sources);
    files(&base.join("docs"), "md", &mut sources);
    sources.push(base.join("README.md"));
    let mut checked = 0;
    let mut problems = Vec::new();
    for file in sources {
        let text = std::fs::read_to_string(&file).unwrap();
        for words in suggested(&text) {
            checked += 1;
            for bad in unknown_flags(&root, &words) {
                problems.push(format!(
                    "{}: `ratchet {}`: {bad}",
                    file.strip_prefix(base).unwrap().display(),
                    words.join(" ")
                ));
            }
        }
    }
    assert!(checked > 50, "the walk found the suggestions ({checked})");
    assert!(problems.is_empty(), "suggested flags that do not exist:\n{}", problems.join("\n"));
}

#[test]
fn the_walk_catches_a_flag_a_command_does_not_take() {
    let root = ratchet::cli::Cli::command();
    let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert!(unknown_flags(&root, &words("step --provider self --allow-dirty")).is_empty());
    assert!(unknown_flags(&root, &words("--json log verify")).is_empty());
    assert_eq!(unknown_flags(&root, &words("status --provider self")), ["--provider (on `status`)"]);
    assert_eq!(unknown_flags(&root, &words("log verify --fix")), ["--fix (on `verify`)"]);
    assert!(unknown_flags(&root, &words("intent show | set NAME --file F")).is_empty());
    assert_eq!(unknown_flags(&root, &words("intent set | show --file F")), ["--file (on `show`)"]);
}

/// Bare `--flag` words in the string literals of `src/cli/NAME.rs`.
fn bare_flags(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Comments, and the arguments of a program ratchet runs itself, are not messages.
    let message = |l: &&str| !l.trim_start().starts_with("//") && l.contains('"') && !l.contains(".arg");
    for line in text.lines().filter(message) {
        // Only inside string literals, and not inside a `ratchet …` span (checked above).
        for (i, lit) in line.split('"').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            let outside: String = lit.split('`').step_by(2).collect::<Vec<_>>().join(" ");
            for w in outside.split_whitespace() {
                if let Some(flag) = w.strip_prefix("--") {
                    let name: String = flag.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                    if name.len() > 1 {
                        out.push(name);
                    }
                }
            }
        }
    }
    out
}

/// Every long flag of `cmd` and its subcommands.
fn flags_under(cmd: &clap::Command, out: &mut Vec<String>) {
    out.extend(cmd.get_arguments().filter_map(|a| a.get_long().map(str::to_string)));
    for sub in cmd.get_subcommands() {
        flags_under(sub, out);
    }
}

#[test]
fn a_command_s_own_messages_name_only_flags_it_takes() {
    let root = ratchet::cli::Cli::command();
    let cli = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli");
    let mut problems = Vec::new();
    let mut checked = 0;
    for sub in root.get_subcommands() {
        let Ok(text) = std::fs::read_to_string(cli.join(format!("{}.rs", sub.get_name()))) else { continue };
        let mut known = vec!["help".to_string(), "version".to_string()];
        known.extend(root.get_arguments().filter_map(|a| a.get_long().map(str::to_string)));
        flags_under(sub, &mut known);
        for flag in bare_flags(&text) {
            checked += 1;
            if !known.contains(&flag) {
                problems.push(format!("src/cli/{}.rs: --{flag}", sub.get_name()));
            }
        }
    }
    assert!(checked > 5, "the walk found flags ({checked})");
    assert!(problems.is_empty(), "messages naming flags their command does not take:\n{}", problems.join("\n"));
}

/// Every command's `--help`, through the binary.
fn every_help() -> Vec<(String, String)> {
    let ws = crate::support::workspace::Ws::new();
    let mut out = Vec::new();
    fn walk(
        cmd: &clap::Command,
        path: Vec<String>,
        ws: &crate::support::workspace::Ws,
        out: &mut Vec<(String, String)>,
    ) {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        out.push((path.join(" "), crate::support::workspace::stdout(&ws.run(&args))));
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            walk(sub, p, ws, out);
        }
    }
    walk(&ratchet::cli::Cli::command(), Vec::new(), &ws, &mut out);
    out
}

#[test]
fn help_names_no_document_that_does_not_ship_and_lists_global_options_apart() {
    let helps = every_help();
    assert!(helps.len() > 40, "{}", helps.len());
    for (cmd, text) in &helps {
        for word in ["DESIGN", "§", "seeds/", "seed 00"] {
            assert!(!text.contains(word), "`ratchet {cmd} --help` names {word}:\n{text}");
        }
        assert_eq!(text.matches("Global options:").count(), 1, "`ratchet {cmd} --help`:\n{text}");
        assert!(text.contains("Usage: ratchet"), "`ratchet {cmd} --help`:\n{text}");
    }
}

#[test]
fn completions_and_the_man_page_come_from_the_same_commands() {
    let ws = crate::support::workspace::Ws::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = ws.run(&["completions", shell]);
        assert_eq!(crate::support::workspace::code(&out), 0, "{shell}");
        let text = crate::support::workspace::stdout(&out);
        assert!(text.contains("heartbeat") && text.contains("allow-dirty"), "{shell}: {text}");
    }
    let out = ws.run(&["completions", "tcsh"]);
    assert_eq!(crate::support::workspace::code(&out), 2, "an unknown shell is a usage error");
    let man = crate::support::workspace::stdout(&ws.run(&["man"]));
    assert!(man.starts_with(".ie") && man.contains(".TH ratchet 1") && man.contains("heartbeat"), "{man}");
}

#[test]
fn serve_writes_no_colour_codes_when_its_output_is_not_a_terminal() {
    use std::io::BufRead;
    let ws = crate::support::workspace::Ws::init();
    let mut child = std::process::Command::new(crate::support::workspace::bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--print-addr"])
        .current_dir(&ws.root)
        .env("HOME", &ws.home)
        .env("XDG_STATE_HOME", ws.home.join("state"))
        .env("RATCHET_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut addr = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut addr).unwrap();
    let addr = addr.trim().to_string();
    // One request, so that a request line is logged too.
    let _ = std::net::TcpStream::connect(&addr).and_then(|mut s| {
        use std::io::{Read, Write};
        s.write_all(b"GET /llms.txt HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")?;
        let mut sink = Vec::new();
        s.read_to_end(&mut sink)
    });
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ratchet serve listening"), "{err}");
    assert!(!err.contains('\u{1b}'), "no escape codes into a pipe: {err:?}");
}
