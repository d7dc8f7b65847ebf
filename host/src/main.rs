use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let args = wasmpaste_host::cli::Args::parse();
    if args.command == Some(wasmpaste_host::cli::Command::Health) {
        let listen = wasmpaste_host::health::listen_address(args.listen);
        return match wasmpaste_host::health::check(listen, std::time::Duration::from_secs(5)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let log_format = args.log_format;
    wasmpaste_host::cli::init_logging(log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(wasmpaste_host::cli::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            match log_format {
                // A log collector reads stderr as JSON lines: the reason the
                // host stopped is one of them.
                wasmpaste_host::cli::LogFormat::Json => tracing::error!("{e:#}"),
                wasmpaste_host::cli::LogFormat::Text => eprintln!("error: {e:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}
