#include "client/cli.h"

#include <CLI/CLI.hpp>

#include "client/access_commands.h"
#include "client/cache_commands.h"
#include "client/command_context.h"
#include "client/command_table.h"
#include "client/completion.h"
#include "client/file_commands.h"
#include "client/health_commands.h"
#include "client/image_commands.h"
#include "client/job_commands.h"
#include "client/pipeline_commands.h"
#include "client/suggest.h"
#include "common/version.h"

namespace deja {
namespace {

using cli::CommandContext;
using cli::CommandTable;
using cli::GlobalFlags;

constexpr char kDescription[] =
    "deja: the client of Deja, a distributed job scheduler that never runs the same job "
    "twice.\nIdentical jobs (same app, command, env, params and inputs) are served from an "
    "earlier success instead of running again.";

constexpr char kFooter[] =
    "Every command also takes --scheduler, --json, --timeout, --tls_ca, --token, --token_file "
    "and --insecure.\n"
    "Environment: DEJA_SCHEDULER is the scheduler address when --scheduler is not given "
    "(default 127.0.0.1:7070); DEJA_TLS_CA the CA to trust, DEJA_TOKEN or DEJA_TOKEN_FILE the "
    "token, DEJA_INSECURE=1 plaintext (see docs/security.md).\n"
    "Exit codes: 0 success; 1 error from the scheduler or the connection; 2 usage error; "
    "`deja run` exits with the job's exit code (reused success 0, failure without an exit "
    "code 1, cancelled 130); `deja pipeline run|retry` with 0 when the pipeline succeeded, "
    "else 1.\n"
    "Examples:\n"
    "  deja run --param n=3 -- ./train.sh '${params.n}'\n"
    "  deja submit --project ml --output 'out/*.csv' -- python prep.py\n"
    "  deja ls --state RUNNING\n"
    "  deja logs j12 --stderr\n"
    "  deja run --input data=./dataset --output 'out/*' -- ./train.sh '${inputs.data}'\n"
    "  deja get j12 --out results\n"
    "  deja run --memoization off -- ./sample.sh\n"
    "  deja project set ml --memoization on --retention 72\n"
    "  deja cache ls --project ml\n"
    "  deja explain j14\n"
    "  deja pipeline run examples/pipeline/pipeline.yaml --param threshold=0.6\n"
    "  deja pipeline plan examples/pipeline/pipeline.yaml --force-node train\n"
    "  deja token create --project ml --role submitter --description alice\n"
    "See docs/cli.md, docs/memoization.md, docs/pipelines.md and docs/security.md for the full "
    "reference.";

void AddGlobalFlags(CLI::App* app, GlobalFlags* global) {
  app->add_option("--scheduler", global->scheduler,
                  "Scheduler address HOST:PORT (else $DEJA_SCHEDULER, else 127.0.0.1:7070)")
      ->type_name("HOST:PORT");
  app->add_flag("--json", global->json,
                "Machine output: protobuf JSON (snake_case field names), one object per line");
  app->add_option("--timeout", global->timeout_seconds,
                  "Deadline of each request to the scheduler, in seconds (default 30)")
      ->type_name("SECONDS")
      ->check(CLI::PositiveNumber);
  app->add_option("--tls_ca", global->tls_ca,
                  "CA certificate (PEM) the scheduler's certificate is checked against (else "
                  "$DEJA_TLS_CA, else the system's; a scheduler's own is DATA_DIR/tls/ca.crt)")
      ->type_name("FILE");
  app->add_option("--token", global->token,
                  "Token to call the scheduler with (else --token_file, $DEJA_TOKEN, "
                  "$DEJA_TOKEN_FILE)")
      ->type_name("TOKEN");
  app->add_option("--token_file", global->token_file, "File holding the token")->type_name("FILE");
  app->add_flag("--insecure", global->insecure,
                "Plaintext, no token: for a scheduler started with --insecure "
                "(else $DEJA_INSECURE=1)");
}

}  // namespace

int RunCli(int argc, char** argv, std::ostream& out, std::ostream& err) {
  CLI::App app(kDescription, "deja");
  app.footer(kFooter);
  app.require_subcommand(1);
  app.set_version_flag("--version", VersionLine("deja"),
                       "Print the version and git commit, and exit");
  GlobalFlags global;
  AddGlobalFlags(&app, &global);

  // `deja --help` lists the commands in this order.
  CommandTable table(&app);
  cli::JobCommands::Register(table);       // submit run status logs ls cancel workers
  cli::FileCommands::Register(table);      // get
  cli::CacheCommands::Register(table);     // project cache explain stats
  cli::PipelineCommands::Register(table);  // pipeline
  cli::AccessCommands::Register(table);    // token audit
  cli::ImageCommands::Register(table);     // image
  cli::HealthCommands::Register(table);    // health
  // From the table itself: completion scripts and the man page.
  std::string shell;
  CLI::App* completion = table.AddCommand(
      "completion",
      "Print the shell completion script of bash, zsh or fish (install: deja completion bash > "
      "/etc/bash_completion.d/deja)",
      [&app, &shell](cli::CommandContext& context) {
        context.out() << (shell == "bash"  ? cli::BashCompletion(app)
                          : shell == "zsh" ? cli::ZshCompletion(app)
                                           : cli::FishCompletion(app));
        return cli::kExitOk;
      });
  completion->add_option("SHELL", shell, "bash, zsh or fish")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh", "fish"}));
  table.AddCommand("man",
                   "Print the man page deja(1), made from this help (install: deja man > "
                   "/usr/local/share/man/man1/deja.1)",
                   [&app](cli::CommandContext& context) {
                     context.out() << cli::ManPage(app, VersionLine("deja"));
                     return cli::kExitOk;
                   });
  for (CLI::App* command : table.commands()) AddGlobalFlags(command, &global);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != static_cast<int>(CLI::ExitCodes::Success)) {
      // A mistyped command or flag: say which, and what it may have meant.
      std::string meant = cli::DidYouMean(app, std::vector<std::string>(argv + 1, argv + argc));
      if (!meant.empty()) {
        err << "deja: " << meant << "\n";
        return cli::kExitUsage;
      }
    }
    int code = app.exit(e, out, err);
    return code == 0 ? cli::kExitOk : cli::kExitUsage;
  }

  const CommandTable::Handler* handler = table.Parsed();
  if (handler == nullptr) {
    err << "deja: no command given; see deja --help\n";
    return cli::kExitUsage;
  }
  auto security = cli::ResolveSecurity(global);
  if (!security.ok()) {
    err << "deja: " << security.status().message() << "\n";
    return cli::kExitUsage;
  }
  CommandContext context(global, *security, out, err);
  return (*handler)(context);
}

}  // namespace deja
