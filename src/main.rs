fn main() -> std::process::ExitCode {
    ratchet::cli::main()
}
