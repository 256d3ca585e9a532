#include "client/access_commands.h"

#include <CLI/CLI.hpp>
#include <memory>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "client/cli_format.h"

namespace deja::cli {
namespace {

std::string RoleName(deja::v1::Role role) {
  std::string name = deja::v1::Role_Name(role);
  absl::AsciiStrToLower(&name);
  return name;
}

}  // namespace

absl::StatusOr<deja::v1::Role> ParseRole(const std::string& role) {
  const std::string lower = absl::AsciiStrToLower(role);
  for (deja::v1::Role r :
       {deja::v1::READER, deja::v1::SUBMITTER, deja::v1::ADMIN, deja::v1::WORKER}) {
    if (lower == RoleName(r)) return r;
  }
  return InvalidFlag("--role", role, "must be reader, submitter, admin or worker");
}

void AccessCommands::Register(CommandTable& table) {
  struct Flags {
    std::string role;
    std::string project;
    std::string description;
    bool all = false;
    std::string id;
    uint32_t limit = 100;
    bool denied = false;
  };
  auto flags = std::make_shared<Flags>();

  CLI::App* token = table.AddGroup(
      "token", "Create, list and revoke the tokens that may call the scheduler (admin tokens)");
  CLI::App* create = table.AddCommand(
      token, "create",
      "Create a token and print it (shown once: only its hash is kept). A project's admin "
      "creates its project's tokens; worker tokens need an admin token of every project",
      [flags](CommandContext& context) {
        return AccessCommands(context).TokenCreate(flags->role, flags->project, flags->description);
      });
  create->add_option("--role", flags->role, "reader, submitter, admin or worker")
      ->required()
      ->type_name("ROLE");
  create
      ->add_option("--project", flags->project,
                   "The project the token is for (default: every project; none for worker)")
      ->type_name("P");
  create->add_option("--description", flags->description, "Who or what holds it")
      ->type_name("TEXT");
  CLI::App* ls = table.AddCommand(
      token, "ls", "List the tokens in force (an admin token's projects)",
      [flags](CommandContext& context) { return AccessCommands(context).TokenList(flags->all); });
  ls->add_flag("--all", flags->all, "Also revoked tokens");
  CLI::App* revoke = table.AddCommand(
      token, "revoke", "Revoke a token: it is refused from then on",
      [flags](CommandContext& context) { return AccessCommands(context).TokenRevoke(flags->id); });
  revoke->add_option("ID", flags->id, "Token id (t3)")->required();

  CLI::App* audit = table.AddCommand(
      "audit", "Denied calls and admin actions, newest first (an admin token of every project)",
      [flags](CommandContext& context) {
        return AccessCommands(context).Audit(flags->limit, flags->denied);
      });
  audit->add_option("--limit", flags->limit, "Events to show (default 100)")->type_name("N");
  audit->add_flag("--denied", flags->denied, "Only denied calls");
}

int AccessCommands::TokenCreate(const std::string& role, const std::string& project,
                                const std::string& description) {
  auto parsed = ParseRole(role);
  if (!parsed.ok()) return context_.UsageError(parsed.status());
  deja::v1::CreateTokenRequest request;
  request.set_role(*parsed);
  request.set_project(project);
  request.set_description(description);
  auto created = context_.client().CreateToken(request);
  if (!created.ok()) return context_.Fail(created.status());
  if (context_.json()) {
    context_.PrintJson(*created);
    return kExitOk;
  }
  context_.out() << created->secret() << "\n";
  const deja::v1::Token& token = created->token();
  context_.err() << "deja: token " << token.id() << " ("
                 << (token.role() == deja::v1::WORKER
                         ? std::string("worker")
                         : absl::StrCat(token.project().empty() ? "every project"
                                                                : "project " + token.project(),
                                        ", ", RoleName(token.role())))
                 << "); it is shown once: keep it where only its holder can read it\n";
  return kExitOk;
}

int AccessCommands::TokenList(bool all) {
  auto tokens = context_.client().ListTokens(all);
  if (!tokens.ok()) return context_.Fail(tokens.status());
  if (context_.json()) {
    for (const auto& token : tokens->tokens()) context_.PrintJson(token);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& token : tokens->tokens()) {
    rows.push_back(
        {token.id(), RoleName(token.role()),
         token.role() == deja::v1::WORKER ? "-"
         : token.project().empty()        ? "(every project)"
                                          : token.project(),
         FormatTimestamp(token.created_at_ms(), context_.tz()), OrDash(token.created_by()),
         token.revoked_at_ms() == 0 ? std::string("-")
                                    : FormatTimestamp(token.revoked_at_ms(), context_.tz()),
         OrDash(token.description())});
  }
  context_.out() << RenderTable(
      {"ID", "ROLE", "PROJECT", "CREATED", "BY", "REVOKED", "DESCRIPTION"}, rows);
  return kExitOk;
}

int AccessCommands::TokenRevoke(const std::string& id) {
  auto token = context_.client().RevokeToken(id);
  if (!token.ok()) return context_.Fail(token.status());
  if (context_.json()) {
    context_.PrintJson(*token);
    return kExitOk;
  }
  context_.out() << "revoked " << token->id() << " at "
                 << FormatTimestamp(token->revoked_at_ms(), context_.tz()) << "\n";
  return kExitOk;
}

int AccessCommands::Audit(uint32_t limit, bool denied_only) {
  deja::v1::ListAuditRequest request;
  request.set_limit(limit);
  request.set_denied_only(denied_only);
  auto events = context_.client().ListAudit(request);
  if (!events.ok()) return context_.Fail(events.status());
  if (context_.json()) {
    for (const auto& event : events->events()) context_.PrintJson(event);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& event : events->events()) {
    rows.push_back({FormatTimestamp(event.time_ms(), context_.tz()),
                    event.denied() ? "denied" : "done", OrDash(event.method()),
                    OrDash(event.peer()), OrDash(event.principal()), OrDash(event.detail())});
  }
  context_.out() << RenderTable({"TIME", "OUTCOME", "CALL", "PEER", "BY", "DETAIL"}, rows);
  return kExitOk;
}

}  // namespace deja::cli
