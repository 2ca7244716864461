//! Talking to the human at the controlling terminal.
//!
//! A human act (accepting rails, setting an intent, approving a patch) needs
//! a person at a terminal. ratchet asks through `/dev/tty`, as ssh, sudo and
//! gpg do, so prompts work even when stdin or stdout are redirected, and a
//! process without a controlling terminal (cron, CI, an agent's subprocess,
//! every child in ratchet's sandbox) is recognised as having no human.
//! `RATCHET_NO_INPUT=1` makes ratchet behave as if there were no terminal.
//!
//! Before every question, input that arrived before the question was asked
//! is discarded (`tcflush(TCIFLUSH)`: typed-ahead or injected keystrokes
//! never answer a question they could not have seen), and ratchet checks it
//! is the terminal's foreground process group (a background job gets no
//! answers). What this does not stop: a process of the same user outside
//! ratchet's sandbox can still write to the terminal like the user does;
//! the README says so.
//!
//! Ctrl-C at a question: while a step runs, SIGINT only sets the process's
//! stop flag ([`crate::process::stopped`]), so a question waits for input
//! ten times a second at most and gives up (`None`) once the flag is set;
//! [`Terminal::interrupted`] tells that apart from the end of input.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};

use crate::cli::CommandError;

pub const NO_INPUT_ENV: &str = "RATCHET_NO_INPUT";

/// The controlling terminal, open for reading and writing.
pub struct Terminal {
    reader: BufReader<File>,
    writer: File,
}

impl Terminal {
    /// The controlling terminal, or `None` when there is no human to ask.
    pub fn open() -> Option<Terminal> {
        if std::env::var_os(NO_INPUT_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
            return None;
        }
        let file = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").ok()?;
        let writer = file.try_clone().ok()?;
        Some(Terminal { reader: BufReader::new(file), writer })
    }

    /// The terminal, or `HUMAN_REQUIRED` naming the act that needs a human.
    pub fn require(act: &str, bypass: Option<&str>) -> Result<Terminal, CommandError> {
        Terminal::open().ok_or_else(|| {
            let hint = match bypass {
                Some(flag) => format!("run `{act}` yourself at a terminal, or pass {flag} to confirm explicitly"),
                None => format!("run `{act}` yourself at a terminal; it cannot be done by a script or an agent"),
            };
            CommandError::new("HUMAN_REQUIRED", format!("`{act}` is a human act and there is no terminal to ask"), hint)
        })
    }

    pub fn say(&mut self, text: &str) {
        let _ = self.writer.write_all(text.as_bytes());
        let _ = self.writer.flush();
    }

    /// The terminal's height in lines, when it says.
    pub fn rows(&self) -> Option<usize> {
        rustix::termios::tcgetwinsize(self.reader.get_ref()).ok().map(|w| w.ws_row as usize).filter(|&h| h > 0)
    }

    /// Whether this process is the terminal's foreground process group.
    fn in_foreground(&self) -> bool {
        match rustix::termios::tcgetpgrp(self.reader.get_ref()) {
            Ok(pgrp) => pgrp == rustix::process::getpgrp(),
            // Not a terminal after all (a pty that closed): no human.
            Err(_) => false,
        }
    }

    /// Asks a question and returns the answer without its line end; `None`
    /// at end of input, or when ratchet is not in the terminal's foreground.
    /// Input typed before the question was shown is discarded first.
    pub fn ask(&mut self, question: &str) -> Option<String> {
        if !self.in_foreground() {
            self.say("\nratchet is not the terminal's foreground job; not asking\n");
            return None;
        }
        // Whatever is buffered, ours or the kernel's, predates the question.
        let _ = rustix::termios::tcflush(self.reader.get_ref(), rustix::termios::QueueSelector::IFlush);
        let buffered = self.reader.buffer().len();
        self.reader.consume(buffered);
        self.say(question);
        if !self.wait_for_input() {
            self.say("\n");
            return None;
        }
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
        }
    }

    /// Asks for a secret (a passphrase) with the terminal's echo off, and
    /// turns the echo back on before returning, whatever happened. The
    /// answer is wiped from memory when dropped.
    pub fn ask_secret(&mut self, question: &str) -> Option<zeroize::Zeroizing<String>> {
        use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
        let fd = self.reader.get_ref().try_clone().ok()?;
        let saved = tcgetattr(&fd).ok()?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        // ECHONL: the Enter still moves to a new line.
        quiet.local_modes.insert(LocalModes::ECHONL);
        tcsetattr(&fd, OptionalActions::Flush, &quiet).ok()?;
        struct Restore(File, rustix::termios::Termios);
        impl Drop for Restore {
            fn drop(&mut self) {
                let _ = tcsetattr(&self.0, OptionalActions::Now, &self.1);
            }
        }
        let _restore = Restore(fd, saved);
        self.ask(question).map(zeroize::Zeroizing::new)
    }

    /// Waits until a line can be read; `false` when Ctrl-C came first.
    fn wait_for_input(&self) -> bool {
        use rustix::event::{PollFd, PollFlags, Timespec};
        let tick = Timespec { tv_sec: 0, tv_nsec: 100_000_000 };
        loop {
            if crate::process::stopped() {
                return false;
            }
            let mut fds = [PollFd::new(self.reader.get_ref(), PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&tick)) {
                Ok(0) | Err(rustix::io::Errno::INTR) => continue,
                // Readable, closed or in error: read_line says which.
                Ok(_) | Err(_) => return !crate::process::stopped(),
            }
        }
    }

    /// Whether the last question went unanswered because of Ctrl-C.
    pub fn interrupted(&self) -> bool {
        crate::process::stopped()
    }

    /// A yes/no question; anything but y/yes is no.
    pub fn confirm(&mut self, question: &str) -> bool {
        self.ask(&format!("{question} [y/N] "))
            .is_some_and(|a| matches!(a.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
    }
}
