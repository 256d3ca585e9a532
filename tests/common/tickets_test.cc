// Tickets (common/tickets.h): peer and blob tickets stamped on the
// assignments that need them, and checked field by field, signature first,
// at an injected time.
#include "common/tickets.h"

#include <string>

#include "absl/time/time.h"
#include "common/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deja {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

tls::Signer Key(const std::string& key_pem) { return tls::Signer::Create(key_pem).value(); }
tls::SignatureVerifier Ca(const std::string& cert_pem) {
  return tls::SignatureVerifier::Create(cert_pem).value();
}

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

  deja::v1::SignedTicket Stamped(const std::string& key_pem) const {
    deja::v1::Assignment a = Remote();
    EXPECT_TRUE(StampPeerTicket(Key(key_pem), "w-dest", kNow, &a).ok());
    return a.peer_ticket();
  }

  static std::string Check(const deja::v1::SignedTicket& ticket, const std::string& ca_pem,
                           const PeerFetch& fetch, absl::Time now = kNow) {
    absl::Status st = CheckPeerTicket(ticket, Ca(ca_pem), fetch, now);
    return st.ok() ? "OK" : absl::StrCat(absl::StatusCodeToString(st.code()), ": ", st.message());
  }

  tls::KeyCert ca_;
};

TEST_F(PeerTicketTest, ATicketPermitsTheCopyItNamesUntilItExpires) {
  const deja::v1::SignedTicket ticket = Stamped(ca_.key_pem);
  EXPECT_EQ(Check(ticket, ca_.cert_pem, Fetch()), "OK");
  EXPECT_EQ(Check(ticket, ca_.cert_pem, Fetch(), kNow + kPeerTicketLifetime - absl::Seconds(1)),
            "OK");
  EXPECT_THAT(Check(ticket, ca_.cert_pem, Fetch(), kNow + kPeerTicketLifetime),
              HasSubstr("PERMISSION_DENIED: peer ticket expired at 2027-01-15T08:10:00"));
}

TEST_F(PeerTicketTest, EachFieldThatDiffersIsNamed) {
  const deja::v1::SignedTicket ticket = Stamped(ca_.key_pem);
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
            "UNAUTHENTICATED: no worker certificate: worker w-holder serves a workspace only to "
            "the worker the scheduler sent to copy it");
  fetch = Fetch();
  fetch.manifest_digest = "m2";
  EXPECT_EQ(Check(ticket, ca_.cert_pem, fetch),
            "PERMISSION_DENIED: peer ticket is for manifest m1, not m2");
}

TEST_F(PeerTicketTest, NoTicketAForgedOneOrAnAlteredOneIsUnauthenticated) {
  EXPECT_THAT(Check(deja::v1::SignedTicket(), ca_.cert_pem, Fetch()),
              HasSubstr("UNAUTHENTICATED: no peer ticket: worker w-holder serves a workspace "
                        "only to the worker the scheduler sent to copy it"));

  auto other = tls::CreateCa("another CA", absl::Hours(1));
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(Check(Stamped(other->key_pem), ca_.cert_pem, Fetch()),
            "UNAUTHENTICATED: peer ticket not signed by the cluster's CA");

  // The ticket of j1 rewritten to name j2, keeping j1's signature.
  deja::v1::SignedTicket altered = Stamped(ca_.key_pem);
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
    ASSERT_TRUE(StampPeerTicket(Key(ca_.key_pem), "w-dest", kNow, a).ok());
    EXPECT_FALSE(a->has_peer_ticket()) << a->ShortDebugString();
  }
  ASSERT_TRUE(StampPeerTicket(Key(ca_.key_pem), "w-holder", kNow, &to_holder).ok());
  EXPECT_FALSE(to_holder.has_peer_ticket());

  EXPECT_FALSE(tls::Signer::Create("not a key").ok());
}

class BlobTicketTest : public PeerTicketTest {
 protected:
  // A RUN of j5 (attempt 2) with a file and a directory input, sent to w1.
  deja::v1::SignedTicket StampedRun() const {
    deja::v1::Assignment a;
    a.set_job_id("j5");
    a.set_attempt(2);
    deja::v1::InputRef* file = a.add_inputs();
    file->set_kind("file");
    file->set_digest("f1");
    deja::v1::InputRef* dir = a.add_inputs();
    dir->set_kind("dir");
    dir->set_digest("d1");
    EXPECT_TRUE(StampBlobTicket(Key(ca_.key_pem), "w1", kNow, &a).ok());
    return a.blob_ticket();
  }

  // Tree d1 holds c1 and c2.
  static absl::StatusOr<bool> Holds(const std::string& tree, const std::string& digest) {
    if (tree != "d1") return absl::NotFoundError("no tree " + tree);
    return digest == "c1" || digest == "c2";
  }

  std::string Download(const deja::v1::SignedTicket& ticket, const std::string& caller,
                       const std::string& digest, absl::Time now = kNow) const {
    absl::Status st = CheckDownloadTicket(ticket, Ca(ca_.cert_pem), caller, digest, now, Holds);
    return st.ok() ? "OK" : absl::StrCat(absl::StatusCodeToString(st.code()), ": ", st.message());
  }
};

TEST_F(BlobTicketTest, AWorkerDownloadsTheBlobsItsTicketNamesAndThoseBelowItsTrees) {
  const deja::v1::SignedTicket ticket = StampedRun();
  EXPECT_EQ(ticket.kind(), "blob");
  for (const char* digest : {"f1", "d1", "c1", "c2"}) {
    EXPECT_EQ(Download(ticket, "w1", digest), "OK") << digest;
  }
  EXPECT_EQ(Download(ticket, "w1", "f1", kNow + kBlobTicketLifetime - absl::Seconds(1)), "OK");
  EXPECT_EQ(Download(ticket, "w1", "x9"),
            "PERMISSION_DENIED: blob x9 is not one job j5 (attempt 2) needs: its ticket does not "
            "name it");
  EXPECT_THAT(Download(ticket, "w1", "f1", kNow + kBlobTicketLifetime),
              HasSubstr("PERMISSION_DENIED: blob ticket expired at "));
}

TEST_F(BlobTicketTest, AnotherWorkerOrNoneForgedOrRelabelledTicketsAreRefused) {
  const deja::v1::SignedTicket ticket = StampedRun();
  EXPECT_EQ(Download(ticket, "w2", "f1"),
            "PERMISSION_DENIED: blob ticket was issued to worker w1, not to the caller (worker "
            "w2)");
  EXPECT_EQ(Download(ticket, "", "f1"),
            "UNAUTHENTICATED: no worker certificate: a ticket is honoured only for the worker it "
            "names (blob f1)");
  // Found by tests/fuzz/tickets_fuzzer.cc: a ticket the CA issued to the
  // empty worker id was honoured for a caller without a certificate.
  deja::v1::Assignment to_nobody;
  to_nobody.add_inputs()->set_digest("f1");
  ASSERT_TRUE(StampBlobTicket(Key(ca_.key_pem), "", kNow, &to_nobody).ok());
  EXPECT_THAT(Download(to_nobody.blob_ticket(), "", "f1"),
              HasSubstr("UNAUTHENTICATED: no worker certificate"));
  EXPECT_EQ(Download(deja::v1::SignedTicket(), "w1", "f1"),
            "UNAUTHENTICATED: no ticket: a worker downloads only the blobs of the jobs assigned "
            "to it, with the assignment's ticket (blob f1)");

  // The ticket rewritten to name another blob, keeping its signature.
  deja::v1::SignedTicket altered = ticket;
  deja::v1::BlobTicket body;
  ASSERT_TRUE(body.ParseFromString(altered.ticket()));
  body.add_digests("x9");
  altered.set_ticket(body.SerializeAsString());
  EXPECT_EQ(Download(altered, "w1", "x9"),
            "UNAUTHENTICATED: blob ticket not signed by the cluster's CA");

  // A peer ticket passed off as a blob ticket, and back: the kind is signed.
  deja::v1::SignedTicket relabelled = Stamped(ca_.key_pem);
  relabelled.set_kind("blob");
  EXPECT_EQ(Download(relabelled, "w-dest", "m1"),
            "UNAUTHENTICATED: blob ticket not signed by the cluster's CA");
  relabelled = ticket;
  relabelled.set_kind("peer");
  EXPECT_EQ(Check(relabelled, ca_.cert_pem, Fetch()),
            "UNAUTHENTICATED: peer ticket not signed by the cluster's CA");
}

TEST_F(BlobTicketTest, AHolderReadsTheManifestOfTheCopyItsPeerTicketNamesAndNothingElse) {
  const deja::v1::SignedTicket ticket = Stamped(ca_.key_pem);  // w-holder to w-dest
  EXPECT_EQ(Download(ticket, "w-holder", "m1"), "OK");
  EXPECT_EQ(Download(ticket, "w-holder", "f1"),
            "PERMISSION_DENIED: peer ticket lets its holder read manifest m1 only, not blob f1");
  EXPECT_EQ(Download(ticket, "w-dest", "m1"),
            "PERMISSION_DENIED: peer ticket is for a copy from worker w-holder, not from the "
            "caller (worker w-dest)");
  EXPECT_THAT(Download(ticket, "w-holder", "m1", kNow + kPeerTicketLifetime),
              HasSubstr("PERMISSION_DENIED: peer ticket expired at "));
}

TEST_F(BlobTicketTest, EveryAssignmentIsStampedWithWhatItNeeds) {
  deja::v1::Assignment copy = Remote();
  ASSERT_TRUE(StampBlobTicket(Key(ca_.key_pem), "w-dest", kNow, &copy).ok());
  deja::v1::BlobTicket body;
  ASSERT_TRUE(body.ParseFromString(copy.blob_ticket().ticket()));
  EXPECT_EQ(body.ShortDebugString(),
            absl::StrCat("worker_id: \"w-dest\" job_id: \"j9\" digests: \"m1\" expires_at_ms: ",
                         absl::ToUnixMillis(kNow + kBlobTicketLifetime)));
  // A tree is its own blob too, and a failing tree read is the answer.
  EXPECT_EQ(Download(StampedRun(), "w1", "d1"), "OK");
  deja::v1::Assignment run;
  run.set_job_id("j6");
  run.add_inputs()->set_kind("dir");
  run.mutable_inputs(0)->set_digest("d7");
  ASSERT_TRUE(StampBlobTicket(Key(ca_.key_pem), "w1", kNow, &run).ok());
  EXPECT_EQ(Download(run.blob_ticket(), "w1", "c1"), "NOT_FOUND: no tree d7");
}

}  // namespace
}  // namespace deja
