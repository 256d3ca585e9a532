// The peer service with TLS (issue 13): a worker's workspace goes only to a
// worker whose certificate the cluster's CA signed, holding the scheduler's
// ticket for that copy. Real TLS on loopback, with a CA made here.
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/credentials.h"
#include "common/manifest.h"
#include "common/tickets.h"
#include "common/tls.h"
#include "deja/v1/peer.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/test_util.h"
#include "worker/paths.h"
#include "worker/peer_client.h"
#include "worker/peer_service.h"

namespace deja::worker {
namespace {

using ::deja::worker::testing::FakeManifests;
using ::deja::worker::testing::MakeTempDir;
using ::deja::worker::testing::ReadFile;
using ::deja::worker::testing::RemoveTempDir;
using ::deja::worker::testing::WriteFile;
using ::testing::HasSubstr;

class PeerTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_dir_ = MakeTempDir("peer_tls_source");
    dest_dir_ = MakeTempDir("peer_tls_dest");
    ca_ = Ca("deja test CA");
    WriteFile(paths::WorkspaceDir(source_dir_, "j1") + "/model.bin", "weights\n");
    WriteFile(paths::WorkspaceDir(source_dir_, "j2") + "/other.bin", "another project's\n");
    for (const char* job : {"j1", "j2"}) {
      auto manifest = BuildManifest(paths::WorkspaceDir(source_dir_, job));
      ASSERT_TRUE(manifest.ok()) << manifest.status();
      manifests_[job] = *manifest;
      refs_[job] = store_.Put(*manifest);
    }
    auto server =
        PeerServer::Start("127.0.0.1:0", source_dir_, store_.loader(), nullptr,
                          PeerGuard{"w-holder", PeerTls{Cert(ca_, "w-holder"), ca_.cert_pem}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
  }
  void TearDown() override {
    server_.reset();
    RemoveTempDir(source_dir_);
    RemoveTempDir(dest_dir_);
  }

  static tls::KeyCert Ca(const std::string& name) {
    auto ca = tls::CreateCa(name, absl::Hours(1));
    EXPECT_TRUE(ca.ok()) << ca.status();
    return ca.ok() ? *ca : tls::KeyCert();
  }
  static tls::KeyCert Cert(const tls::KeyCert& ca, const std::string& worker_id) {
    auto cert = tls::Issue(ca, worker_id, {"127.0.0.1"}, absl::Hours(1));
    EXPECT_TRUE(cert.ok()) << cert.status();
    return cert.ok() ? *cert : tls::KeyCert();
  }

  // What the scheduler stamps on the assignment of a copy of `job` to
  // `destination`, signed with `signer`'s key.
  deja::v1::SignedTicket Ticket(const std::string& job, const std::string& destination,
                                const tls::KeyCert* signer = nullptr) {
    deja::v1::Assignment a;
    a.set_kind(deja::v1::Assignment::MATERIALIZE);
    a.set_source_job_id(job);
    a.set_source_worker_id("w-holder");
    a.set_source_address(address_);
    *a.mutable_source_manifest() = refs_[job];
    EXPECT_TRUE(
        StampPeerTicket(tls::Signer::Create((signer != nullptr ? *signer : ca_).key_pem).value(),
                        destination, absl::Now(), &a)
            .ok());
    return a.peer_ticket();
  }

  // `as` (a certificate of `ca_`) pulls `job` with `ticket` into "dst".
  absl::StatusOr<PullResult> Pull(const std::string& job, const tls::KeyCert& as,
                                  const deja::v1::SignedTicket& ticket) {
    WorkspacePuller puller(dest_dir_, absl::Seconds(2), [&] {
      return absl::StatusOr<PeerTls>(PeerTls{as, ca_.cert_pem});
    });
    return puller.Pull(PeerSource{"w-holder", address_, job, ticket}, refs_[job], manifests_[job],
                       "dst");
  }

  std::string Dst() const { return paths::WorkspaceDir(dest_dir_, "dst"); }

  std::string source_dir_, dest_dir_, address_;
  tls::KeyCert ca_;
  FakeManifests store_;  // before server_, which uses it
  std::map<std::string, deja::v1::Manifest> manifests_;
  std::map<std::string, deja::v1::ManifestRef> refs_;
  std::unique_ptr<PeerServer> server_;
};

TEST_F(PeerTlsTest, TheWorkerTheTicketNamesPullsTheCopy) {
  auto pulled = Pull("j1", Cert(ca_, "w-dest"), Ticket("j1", "w-dest"));
  ASSERT_TRUE(pulled.ok()) << pulled.status();
  EXPECT_EQ(ReadFile(Dst() + "/model.bin"), "weights\n");
  EXPECT_THAT(ReadFile(paths::ReusedMarkerPath(dest_dir_, "dst")), HasSubstr("method=peer"));
}

TEST_F(PeerTlsTest, AFetchWithoutATicketIsRefused) {
  auto pulled = Pull("j1", Cert(ca_, "w-dest"), deja::v1::SignedTicket());
  ASSERT_EQ(pulled.status().code(), absl::StatusCode::kPermissionDenied) << pulled.status();
  EXPECT_THAT(pulled.status().message(),
              HasSubstr("no peer ticket: worker w-holder serves a workspace only to the worker "
                        "the scheduler sent to copy it"));
  EXPECT_FALSE(std::filesystem::exists(Dst()));
}

TEST_F(PeerTlsTest, AnotherJobsTicketIsRefused) {
  // w-dest was sent to copy j1; it asks for j2 with that ticket.
  auto pulled = Pull("j2", Cert(ca_, "w-dest"), Ticket("j1", "w-dest"));
  ASSERT_EQ(pulled.status().code(), absl::StatusCode::kPermissionDenied) << pulled.status();
  EXPECT_THAT(pulled.status().message(),
              HasSubstr("peer ticket is for the workspace of j1, not of j2"));
  EXPECT_FALSE(std::filesystem::exists(Dst()));
}

TEST_F(PeerTlsTest, AnotherWorkersTicketIsRefused) {
  auto pulled = Pull("j1", Cert(ca_, "w-rogue"), Ticket("j1", "w-dest"));
  ASSERT_EQ(pulled.status().code(), absl::StatusCode::kPermissionDenied) << pulled.status();
  EXPECT_THAT(pulled.status().message(),
              HasSubstr("peer ticket was issued to worker w-dest, not to the caller (worker "
                        "w-rogue)"));
}

TEST_F(PeerTlsTest, ATicketNotSignedByTheClusterIsRefused) {
  const tls::KeyCert forger = Ca("a forger's CA");
  auto pulled = Pull("j1", Cert(ca_, "w-dest"), Ticket("j1", "w-dest", &forger));
  ASSERT_EQ(pulled.status().code(), absl::StatusCode::kPermissionDenied) << pulled.status();
  EXPECT_THAT(pulled.status().message(), HasSubstr("peer ticket not signed by the cluster's CA"));
}

TEST_F(PeerTlsTest, ACallerWithoutAClusterCertificateGetsNoConnection) {
  deja::v1::FetchWorkspaceRequest request;
  request.set_job_id("j1");
  *request.mutable_manifest() = refs_["j1"];
  *request.mutable_ticket() = Ticket("j1", "w-dest");
  const tls::KeyCert forger = Ca("a forger's CA");
  ClientSecurity no_cert, foreign_cert, plaintext;
  no_cert.ca_pem = ca_.cert_pem;
  foreign_cert.ca_pem = ca_.cert_pem;
  foreign_cert.client = Cert(forger, "w-dest");
  plaintext.insecure = true;
  for (const ClientSecurity* security : {&no_cert, &foreign_cert, &plaintext}) {
    auto stub =
        deja::v1::Peer::NewStub(grpc::CreateChannel(address_, MakeChannelCredentials(*security)));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    auto reader = stub->FetchWorkspace(&context, request);
    deja::v1::WorkspaceChunk chunk;
    EXPECT_FALSE(reader->Read(&chunk)) << chunk.ShortDebugString();
    const grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  }
}

}  // namespace
}  // namespace deja::worker
