// Peer tickets (common/peer_ticket.h): stamped on the assignments that need
// one, and checked field by field, signature first, at an injected time.
#include "common/peer_ticket.h"

#include <string>

#include "absl/time/time.h"
#include "common/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deja {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

class PeerTicketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = tls::CreateCa("deja test CA", absl::Hours(1));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *ca;
  }

  // A MATERIALIZE of src's workspace, held by w-holder, sent to w-dest.
  static deja::v1::Assignment Remote() {
    deja::v1::Assignment a;
    a.set_kind(deja::v1::Assignment::MATERIALIZE);
    a.set_job_id("j9");
    a.set_source_job_id("j1");
    a.set_source_worker_id("w-holder");
    a.set_source_address("10.0.0.1:7071");
    a.mutable_source_manifest()->set_digest("m1");
    return a;
  }

  static PeerFetch Fetch() { return PeerFetch{"j1", "m1", "w-holder", "w-dest"}; }

  deja::v1::SignedPeerTicket Stamped(const std::string& key_pem) const {
    deja::v1::Assignment a = Remote();
    EXPECT_TRUE(StampPeerTicket(key_pem, "w-dest", kNow, &a).ok());
    return a.peer_ticket();
  }

  static std::string Check(const deja::v1::SignedPeerTicket& ticket, const std::string& ca_pem,
                           const PeerFetch& fetch, absl::Time now = kNow) {
    absl::Status st = CheckPeerTicket(ticket, ca_pem, fetch, now);
    return st.ok() ? "OK" : absl::StrCat(absl::StatusCodeToString(st.code()), ": ", st.message());
  }

  tls::KeyCert ca_;
};

TEST_F(PeerTicketTest, ATicketPermitsTheCopyItNamesUntilItExpires) {
  const deja::v1::SignedPeerTicket ticket = Stamped(ca_.key_pem);
  EXPECT_EQ(Check(ticket, ca_.cert_pem, Fetch()), "OK");
  EXPECT_EQ(Check(ticket, ca_.cert_pem, Fetch(), kNow + kPeerTicketLifetime - absl::Seconds(1)),
            "OK");
  EXPECT_THAT(Check(ticket, ca_.cert_pem, Fetch(), kNow + kPeerTicketLifetime),
              HasSubstr("PERMISSION_DENIED: peer ticket expired at 2027-01-15T08:10:00"));
}

TEST_F(PeerTicketTest, EachFieldThatDiffersIsNamed) {
  const deja::v1::SignedPeerTicket ticket = Stamped(ca_.key_pem);
  PeerFetch fetch = Fetch();
  fetch.job_id = "j2";
  EXPECT_EQ(Check(ticket, ca_.cert_pem, fetch),
            "PERMISSION_DENIED: peer ticket is for the workspace of j1, not of j2");
  fetch = Fetch();
  fetch.holder_worker_id = "w-other";
  EXPECT_EQ(Check(ticket, ca_.cert_pem, fetch),
            "PERMISSION_DENIED: peer ticket is for worker w-holder, not w-other");
  fetch = Fetch();
  fetch.caller_worker_id = "w-rogue";
  EXPECT_EQ(Check(ticket, ca_.cert_pem, fetch),
            "PERMISSION_DENIED: peer ticket was issued to worker w-dest, not to the caller "
            "(worker w-rogue)");
  fetch.caller_worker_id = "";
  EXPECT_EQ(Check(ticket, ca_.cert_pem, fetch),
            "PERMISSION_DENIED: peer ticket was issued to worker w-dest, not to the caller (no "
            "worker certificate)");
  fetch = Fetch();
  fetch.manifest_digest = "m2";
  EXPECT_EQ(Check(ticket, ca_.cert_pem, fetch),
            "PERMISSION_DENIED: peer ticket is for manifest m1, not m2");
}

TEST_F(PeerTicketTest, NoTicketAForgedOneOrAnAlteredOneIsUnauthenticated) {
  EXPECT_THAT(Check(deja::v1::SignedPeerTicket(), ca_.cert_pem, Fetch()),
              HasSubstr("UNAUTHENTICATED: no peer ticket: worker w-holder serves a workspace "
                        "only to the worker the scheduler sent to copy it"));

  auto other = tls::CreateCa("another CA", absl::Hours(1));
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(Check(Stamped(other->key_pem), ca_.cert_pem, Fetch()),
            "UNAUTHENTICATED: peer ticket not signed by the cluster's CA");

  // The ticket of j1 rewritten to name j2, keeping j1's signature.
  deja::v1::SignedPeerTicket altered = Stamped(ca_.key_pem);
  deja::v1::PeerTicket body;
  ASSERT_TRUE(body.ParseFromString(altered.ticket()));
  body.set_source_job_id("j2");
  altered.set_ticket(body.SerializeAsString());
  PeerFetch fetch = Fetch();
  fetch.job_id = "j2";
  EXPECT_EQ(Check(altered, ca_.cert_pem, fetch),
            "UNAUTHENTICATED: peer ticket not signed by the cluster's CA");
}

TEST_F(PeerTicketTest, OnlyACopyFromAnotherWorkerIsStamped) {
  deja::v1::Assignment run;
  run.set_kind(deja::v1::Assignment::RUN);
  run.set_job_id("j3");
  deja::v1::Assignment local = Remote();
  local.clear_source_address();
  local.clear_source_worker_id();
  deja::v1::Assignment to_holder = Remote();
  for (auto* a : {&run, &local}) {
    ASSERT_TRUE(StampPeerTicket(ca_.key_pem, "w-dest", kNow, a).ok());
    EXPECT_FALSE(a->has_peer_ticket()) << a->ShortDebugString();
  }
  ASSERT_TRUE(StampPeerTicket(ca_.key_pem, "w-holder", kNow, &to_holder).ok());
  EXPECT_FALSE(to_holder.has_peer_ticket());

  deja::v1::Assignment remote = Remote();
  EXPECT_FALSE(StampPeerTicket("not a key", "w-dest", kNow, &remote).ok());
}

}  // namespace
}  // namespace deja
