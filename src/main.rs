fn main() -> std::process::ExitCode {
    sluis::cli::main()
}
