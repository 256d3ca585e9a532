#include "common/tls.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/temp_dir.h"

namespace deja::tls {
namespace {

using ::deja::testing::ReadFile;
using ::deja::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

KeyCert Ca(const std::string& name = "test CA") {
  auto ca = CreateCa(name, absl::Hours(24));
  EXPECT_TRUE(ca.ok()) << ca.status();
  return ca.ok() ? *ca : KeyCert();
}

KeyCert Leaf(const KeyCert& ca, const std::vector<std::string>& names = {"127.0.0.1"}) {
  auto leaf = Issue(ca, "leaf", names, absl::Hours(24));
  EXPECT_TRUE(leaf.ok()) << leaf.status();
  return leaf.ok() ? *leaf : KeyCert();
}

TEST(TlsTest, ACaAndTheCertificatesItIssuesSayWhatTheyAre) {
  const KeyCert ca = Ca();
  auto ca_info = Inspect(ca.cert_pem);
  ASSERT_TRUE(ca_info.ok()) << ca_info.status();
  EXPECT_EQ(ca_info->common_name, "test CA");
  EXPECT_TRUE(ca_info->is_ca);

  const KeyCert leaf = Leaf(ca, {"scheduler", "10.0.0.7", "::1"});
  auto info = Inspect(leaf.cert_pem);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->common_name, "leaf");
  EXPECT_THAT(info->names, ElementsAre("scheduler", "10.0.0.7", "::1"));
  EXPECT_FALSE(info->is_ca);
  EXPECT_LE(info->not_before, absl::Now());
  EXPECT_NEAR(absl::ToDoubleHours(info->not_after - absl::Now()), 24, 0.1);
}

TEST(TlsTest, ACertificateIsTrustedOnlyByItsCaAndOnlyWhileValid) {
  const KeyCert ca = Ca();
  const KeyCert leaf = Leaf(ca);
  EXPECT_TRUE(Verify(leaf.cert_pem, ca.cert_pem, absl::Now()).ok());
  EXPECT_THAT(Verify(leaf.cert_pem, Ca("another CA").cert_pem, absl::Now()).message(),
              HasSubstr("certificate not trusted: unable to get local issuer certificate"));
  EXPECT_THAT(Verify(leaf.cert_pem, ca.cert_pem, absl::Now() + absl::Hours(48)).message(),
              HasSubstr("certificate not trusted: certificate has expired"));
}

// A comma would end the subject alternative name and start another.
TEST(TlsTest, ASignatureVerifiesOnlyForItsDataAndItsKeysCertificate) {
  auto ca = CreateCa("signing CA", absl::Hours(1));
  auto other = CreateCa("another CA", absl::Hours(1));
  ASSERT_TRUE(ca.ok() && other.ok());
  auto signer = Signer::Create(ca->key_pem);
  ASSERT_TRUE(signer.ok()) << signer.status();
  auto signature = signer->Sign("ticket bytes");
  ASSERT_TRUE(signature.ok()) << signature.status();
  auto verifier = SignatureVerifier::Create(ca->cert_pem);
  auto foreign = SignatureVerifier::Create(other->cert_pem);
  ASSERT_TRUE(verifier.ok() && foreign.ok());
  EXPECT_TRUE(verifier->Verify("ticket bytes", *signature).ok());
  EXPECT_EQ(verifier->Verify("ticket bytez", *signature).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(foreign->Verify("ticket bytes", *signature).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(verifier->Verify("ticket bytes", "").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(Signer::Create(ca->cert_pem).ok());
  EXPECT_FALSE(SignatureVerifier::Create(ca->key_pem).ok());
}

TEST(TlsTest, ANameThatIsNeitherAHostNorAnAddressIsRefused) {
  const KeyCert ca = Ca();
  for (const std::string bad : {"a,DNS:evil.example", "", "-x", "a b", "a\nb"}) {
    auto leaf = Issue(ca, "leaf", {bad}, absl::Hours(1));
    EXPECT_EQ(leaf.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(leaf.status().message(), HasSubstr("is neither a host name nor an IP address"));
  }
  EXPECT_EQ(Issue(ca, "leaf", {}, absl::Hours(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Issue(KeyCert{"not a key", ca.cert_pem}, "leaf", {"a"}, absl::Hours(1)).ok());
}

// The material works with gRPC's TLS: a server that requires client
// certificates from its CA takes a client that has one, and no other.
class MutualTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = Ca();
    const KeyCert server = Leaf(ca_, {"127.0.0.1"});
    grpc::SslServerCredentialsOptions options(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = ca_.cert_pem;
    options.pem_key_cert_pairs.push_back({server.key_pem, server.cert_pem});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(options), &port_);
    builder.RegisterCallbackGenericService(&unimplemented_);  // a server needs a service
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(); }

  // Whether a client trusting `ca` and presenting `client` (if any) gets a
  // connection: ready, or failed (a refused handshake), whichever comes
  // first; false at the deadline.
  bool Connects(const KeyCert& ca, const KeyCert& client) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = ca.cert_pem;
    options.pem_private_key = client.key_pem;
    options.pem_cert_chain = client.cert_pem;
    auto channel =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::SslCredentials(options));
    const auto deadline = absl::ToChronoTime(absl::Now() + absl::Seconds(10));
    for (auto state = channel->GetState(/*try_to_connect=*/true);;
         state = channel->GetState(/*try_to_connect=*/true)) {
      if (state == GRPC_CHANNEL_READY) return true;
      if (state == GRPC_CHANNEL_TRANSIENT_FAILURE) return false;
      if (!channel->WaitForStateChange(state, deadline)) return false;
    }
  }

  KeyCert ca_;
  grpc::CallbackGenericService unimplemented_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(MutualTlsTest, AClientWithACertificateFromTheCaConnects) {
  EXPECT_TRUE(Connects(ca_, Leaf(ca_, {"worker-1"})));
}

TEST_F(MutualTlsTest, AClientWithoutACertificateOrFromAnotherCaDoesNot) {
  EXPECT_FALSE(Connects(ca_, KeyCert()));
  const KeyCert other = Ca("another CA");
  EXPECT_FALSE(Connects(ca_, Leaf(other, {"worker-1"})));
  EXPECT_FALSE(Connects(other, Leaf(ca_, {"worker-1"})));  // nor one that trusts another CA
}

mode_t Mode(const std::string& path) {
  struct stat st = {};
  stat(path.c_str(), &st);
  return st.st_mode & 07777;
}

TEST(TlsTest, TheClusterMaterialIsCreatedOnceAndKeptSecret) {
  TempDir dir;
  const std::string tls = dir.Sub("tls");
  auto first = LoadOrCreateCluster(tls, {"127.0.0.1", "scheduler"});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(Mode(tls), 0700u);
  EXPECT_EQ(Mode(tls + "/ca.key"), 0600u);
  EXPECT_EQ(Mode(tls + "/server.key"), 0600u);
  EXPECT_EQ(Mode(tls + "/ca.crt"), 0644u);
  EXPECT_EQ(ReadFile(tls + "/ca.crt"), first->ca.cert_pem);
  EXPECT_TRUE(Verify(first->server.cert_pem, first->ca.cert_pem, absl::Now()).ok());

  auto again = LoadOrCreateCluster(tls, {"scheduler"});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->ca.cert_pem, first->ca.cert_pem);
  EXPECT_EQ(again->server.cert_pem, first->server.cert_pem);  // it names "scheduler" already

  // A name the certificate lacks: a new one, from the same CA.
  auto renamed = LoadOrCreateCluster(tls, {"scheduler", "deja.example"});
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  EXPECT_EQ(renamed->ca.cert_pem, first->ca.cert_pem);
  EXPECT_NE(renamed->server.cert_pem, first->server.cert_pem);
  EXPECT_TRUE(Verify(renamed->server.cert_pem, first->ca.cert_pem, absl::Now()).ok());
}

TEST(TlsTest, AnOperatorsCaWithoutItsKeyCannotIssueAndSaysSo) {
  TempDir dir;
  const std::string tls = dir.Sub("tls");
  ASSERT_TRUE(LoadOrCreateCluster(tls, {"scheduler"}).ok());
  ASSERT_EQ(unlink((tls + "/ca.key").c_str()), 0);
  EXPECT_TRUE(LoadOrCreateCluster(tls, {"scheduler"}).ok());  // what is there still serves
  auto status = LoadOrCreateCluster(tls, {"elsewhere"}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("has the CA's certificate but not its key"));
}

}  // namespace
}  // namespace deja::tls
