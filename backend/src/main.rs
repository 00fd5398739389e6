fn main() -> std::process::ExitCode {
    ducha::cli::main()
}
