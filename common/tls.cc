#include "common/tls.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/errors.h"
#include "common/files.h"

namespace deja::tls {
namespace {

template <typename T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const { Free(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Freer<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;
using Store = std::unique_ptr<X509_STORE, Freer<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Freer<X509_STORE_CTX, X509_STORE_CTX_free>>;
using Extension = std::unique_ptr<X509_EXTENSION, Freer<X509_EXTENSION, X509_EXTENSION_free>>;
using Names = std::unique_ptr<GENERAL_NAMES, Freer<GENERAL_NAMES, GENERAL_NAMES_free>>;
using BigNum = std::unique_ptr<BIGNUM, Freer<BIGNUM, BN_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Freer<EVP_MD_CTX, EVP_MD_CTX_free>>;

// `what` failed, with OpenSSL's queued reasons (the queue is emptied).
absl::Status OpenSslError(const std::string& what) {
  std::string message = what;
  const char* separator = ": ";
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    char reason[256];
    ERR_error_string_n(e, reason, sizeof(reason));
    absl::StrAppend(&message, separator, reason);
    separator = "; ";
  }
  return absl::InternalError(message);
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : std::string();
}

absl::StatusOr<std::string> KeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("writing a key");
  }
  return BioContents(bio.get());
}

absl::StatusOr<std::string> CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return OpenSslError("writing a cert");
  return BioContents(bio.get());
}

absl::StatusOr<PKey> ParseKey(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PKey key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return OpenSslError("reading a PEM private key");
  return key;
}

absl::StatusOr<Cert> ParseCert(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Cert cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return OpenSslError("reading a PEM certificate");
  return cert;
}

absl::StatusOr<PKey> NewKey() {
  PKey key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("generating a P-256 key");
  return key;
}

// "DNS:name" or "IP:address" for a subject alternative name; refused when
// it is neither (a comma would end the entry and start another).
absl::StatusOr<std::string> AltName(const std::string& name) {
  unsigned char address[16];
  if (inet_pton(AF_INET, name.c_str(), address) == 1 ||
      inet_pton(AF_INET6, name.c_str(), address) == 1) {
    return absl::StrCat("IP:", name);
  }
  const bool valid =
      !name.empty() && name.size() <= 253 && name.front() != '-' && name.front() != '.' &&
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
          std::string::npos;
  if (!valid) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", absl::CHexEscape(name), "\" is neither a host name nor an IP address"));
  }
  return absl::StrCat("DNS:", name);
}

// A certificate for `key`, named `common_name`, signed by `issuer_key` on
// behalf of `issuer` (nullptr: self-signed), with `extensions` (NID, value
// in OpenSSL's configuration syntax), valid from five minutes ago (clocks
// differ) for `validity`.
absl::StatusOr<Cert> Sign(EVP_PKEY* key, const std::string& common_name, X509* issuer,
                          EVP_PKEY* issuer_key,
                          const std::vector<std::pair<int, std::string>>& extensions,
                          absl::Duration validity) {
  Cert cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) return OpenSslError("X509_new");
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return OpenSslError("a serial number");
  serial[0] &= 0x7f;  // positive
  BigNum number(BN_bin2bn(serial, sizeof(serial), nullptr));
  if (!number || BN_to_ASN1_INTEGER(number.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return OpenSslError("setting the serial number");
  }
  const int64_t seconds = absl::ToInt64Seconds(validity);
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), static_cast<int>(seconds / 86400),
                       seconds % 86400, nullptr) == nullptr) {
    return OpenSslError("setting the validity");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (X509_set_pubkey(cert.get(), key) != 1 ||
      X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1 ||
      X509_set_issuer_name(cert.get(),
                           issuer != nullptr ? X509_get_subject_name(issuer) : subject) != 1) {
    return OpenSslError("naming the certificate");
  }
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr,
                 0);
  for (const auto& [nid, value] : extensions) {
    Extension extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str()));
    if (!extension || X509_add_ext(cert.get(), extension.get(), -1) != 1) {
      return OpenSslError(absl::StrCat("extension ", OBJ_nid2sn(nid), " = ", value));
    }
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) return OpenSslError("signing");
  return cert;
}

absl::StatusOr<KeyCert> Pems(EVP_PKEY* key, X509* cert) {
  auto key_pem = KeyPem(key);
  if (!key_pem.ok()) return key_pem.status();
  auto cert_pem = CertPem(cert);
  if (!cert_pem.ok()) return cert_pem.status();
  return KeyCert{*std::move(key_pem), *std::move(cert_pem)};
}

absl::Time FromAsn1(const ASN1_TIME* time) {
  struct tm parts = {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&parts));
}

}  // namespace

Identity SplitIdentityPem(const std::string& pem) {
  static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  Identity identity;
  const size_t cert = pem.find(kBegin);
  if (cert == std::string::npos) return identity;
  const size_t ca = pem.find(kBegin, cert + kBegin.size());
  identity.pair = {pem.substr(0, cert), pem.substr(cert, ca - cert)};
  if (ca != std::string::npos) identity.ca_pem = pem.substr(ca);
  return identity;
}

absl::StatusOr<KeyCert> CreateCa(const std::string& common_name, absl::Duration validity) {
  auto key = NewKey();
  if (!key.ok()) return key.status();
  auto cert = Sign(key->get(), common_name, nullptr, key->get(),
                   {{NID_basic_constraints, "critical,CA:TRUE"},
                    {NID_key_usage, "critical,keyCertSign,cRLSign"},
                    {NID_subject_key_identifier, "hash"}},
                   validity);
  if (!cert.ok()) return cert.status();
  return Pems(key->get(), cert->get());
}

absl::StatusOr<KeyCert> Issue(const KeyCert& ca, const std::string& common_name,
                              const std::vector<std::string>& names, absl::Duration validity) {
  if (names.empty()) return absl::InvalidArgumentError("a certificate needs at least one name");
  std::vector<std::string> alt_names;
  for (const std::string& name : names) {
    auto alt = AltName(name);
    if (!alt.ok()) return alt.status();
    alt_names.push_back(*std::move(alt));
  }
  auto ca_key = ParseKey(ca.key_pem);
  if (!ca_key.ok()) return ca_key.status();
  auto ca_cert = ParseCert(ca.cert_pem);
  if (!ca_cert.ok()) return ca_cert.status();
  auto key = NewKey();
  if (!key.ok()) return key.status();
  auto cert = Sign(key->get(), common_name, ca_cert->get(), ca_key->get(),
                   {{NID_basic_constraints, "critical,CA:FALSE"},
                    {NID_key_usage, "critical,digitalSignature"},
                    {NID_ext_key_usage, "serverAuth,clientAuth"},
                    {NID_subject_key_identifier, "hash"},
                    {NID_authority_key_identifier, "keyid:always"},
                    {NID_subject_alt_name, absl::StrJoin(alt_names, ",")}},
                   validity);
  if (!cert.ok()) return cert.status();
  return Pems(key->get(), cert->get());
}

absl::StatusOr<CertInfo> Inspect(const std::string& cert_pem) {
  auto cert = ParseCert(cert_pem);
  if (!cert.ok()) return cert.status();
  CertInfo info;
  char common_name[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert->get()), NID_commonName, common_name,
                                sizeof(common_name)) > 0) {
    info.common_name = common_name;
  }
  Names names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert->get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_STRING* dns = name->d.dNSName;
      info.names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                              static_cast<size_t>(ASN1_STRING_length(dns)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_STRING* ip = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      const int family = ASN1_STRING_length(ip) == 4 ? AF_INET : AF_INET6;
      if (inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof(text)) != nullptr) {
        info.names.emplace_back(text);
      }
    }
  }
  info.is_ca = X509_check_ca(cert->get()) == 1;
  info.not_before = FromAsn1(X509_get0_notBefore(cert->get()));
  info.not_after = FromAsn1(X509_get0_notAfter(cert->get()));
  return info;
}

absl::Status Verify(const std::string& cert_pem, const std::string& ca_cert_pem, absl::Time now) {
  auto cert = ParseCert(cert_pem);
  if (!cert.ok()) return cert.status();
  auto ca = ParseCert(ca_cert_pem);
  if (!ca.ok()) return ca.status();
  Store store(X509_STORE_new());
  StoreCtx context(X509_STORE_CTX_new());
  if (!store || !context || X509_STORE_add_cert(store.get(), ca->get()) != 1 ||
      X509_STORE_CTX_init(context.get(), store.get(), cert->get(), nullptr) != 1) {
    return OpenSslError("setting up a verification");
  }
  X509_STORE_CTX_set_time(context.get(), 0, absl::ToTimeT(now));
  if (X509_verify_cert(context.get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        absl::StrCat("certificate not trusted: ",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(context.get()))));
  }
  return absl::OkStatus();
}

bool NamesAllWithTimeLeft(const CertInfo& info, const std::vector<std::string>& names,
                          absl::Time now) {
  for (const std::string& name : names) {
    if (std::find(info.names.begin(), info.names.end(), name) == info.names.end()) return false;
  }
  return now + (info.not_after - info.not_before) / 10 < info.not_after;
}

absl::Status CheckPair(const KeyCert& pair) {
  auto key = ParseKey(pair.key_pem);
  if (!key.ok()) return key.status();
  auto cert = ParseCert(pair.cert_pem);
  if (!cert.ok()) return cert.status();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the key is not the certificate's");
  }
  return absl::OkStatus();
}

absl::StatusOr<Signer> Signer::Create(const std::string& key_pem) {
  auto key = ParseKey(key_pem);
  if (!key.ok()) return key.status();
  return Signer(std::shared_ptr<EVP_PKEY>(key->release(), EVP_PKEY_free));
}

absl::StatusOr<std::string> Signer::Sign(std::string_view data) const {
  MdCtx context(EVP_MD_CTX_new());
  size_t size = 0;
  if (!context ||
      EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(context.get(), nullptr, &size, nullptr, 0) != 1) {
    return OpenSslError("signing");
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return OpenSslError("signing");
  }
  signature.resize(size);  // a DER ECDSA signature is often shorter than its bound
  return signature;
}

absl::StatusOr<SignatureVerifier> SignatureVerifier::Create(const std::string& cert_pem) {
  auto cert = ParseCert(cert_pem);
  if (!cert.ok()) return cert.status();
  if (X509_get0_pubkey(cert->get()) == nullptr) return OpenSslError("reading a certificate's key");
  return SignatureVerifier(std::shared_ptr<X509>(cert->release(), X509_free));
}

absl::Status SignatureVerifier::Verify(std::string_view data, std::string_view signature) const {
  EVP_PKEY* key = X509_get0_pubkey(cert_.get());  // owned by the certificate
  MdCtx context(EVP_MD_CTX_new());
  if (!context || EVP_DigestVerifyInit(context.get(), nullptr, EVP_sha256(), nullptr, key) != 1) {
    return OpenSslError("setting up a signature check");
  }
  const int verified = EVP_DigestVerify(
      context.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
      reinterpret_cast<const unsigned char*>(data.data()), data.size());
  ERR_clear_error();
  if (verified != 1) return absl::UnauthenticatedError("bad signature");
  return absl::OkStatus();
}

namespace {

// `pem` at `path`: a key only its owner may read.
absl::Status WritePem(const std::string& path, const std::string& pem, bool secret) {
  return WriteFileAtomically(path, pem, /*sync=*/true, secret ? 0600 : 0644);
}

// Whether `server` can go on serving: issued by `ca`, naming every one of
// `names`, and not within a tenth of its validity of expiring.
bool StillGood(const KeyCert& server, const KeyCert& ca, const std::vector<std::string>& names) {
  auto info = Inspect(server.cert_pem);
  if (!info.ok() || !CheckPair(server).ok() ||
      !Verify(server.cert_pem, ca.cert_pem, absl::Now()).ok()) {
    ERR_clear_error();
    return false;
  }
  return NamesAllWithTimeLeft(*info, names, absl::Now());
}

}  // namespace

absl::StatusOr<Cluster> LoadOrCreateCluster(const std::string& dir,
                                            const std::vector<std::string>& names) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus(errno, "mkdir " + dir);
  if (chmod(dir.c_str(), 0700) != 0) return ErrnoStatus(errno, "chmod 0700 " + dir);
  const std::string ca_cert = absl::StrCat(dir, "/ca.crt");
  const std::string ca_key = absl::StrCat(dir, "/ca.key");
  const std::string server_cert = absl::StrCat(dir, "/server.crt");
  const std::string server_key = absl::StrCat(dir, "/server.key");

  Cluster cluster;
  auto ca_pem = ReadWholeFile(ca_cert);
  if (ca_pem.ok()) {
    cluster.ca.cert_pem = *std::move(ca_pem);
    auto key_pem = ReadWholeFile(ca_key);
    if (key_pem.ok()) {
      cluster.ca.key_pem = *std::move(key_pem);
    } else if (!absl::IsNotFound(key_pem.status())) {
      return key_pem.status();
    }
  } else if (absl::IsNotFound(ca_pem.status())) {
    auto ca = CreateCa("Deja cluster CA", kCaValidity);
    if (!ca.ok()) return ca.status();
    // The key first: a CA certificate on disk always has its key.
    if (absl::Status st = WritePem(ca_key, ca->key_pem, true); !st.ok()) return st;
    if (absl::Status st = WritePem(ca_cert, ca->cert_pem, false); !st.ok()) return st;
    cluster.ca = *std::move(ca);
  } else {
    return ca_pem.status();
  }

  auto cert_pem = ReadWholeFile(server_cert);
  auto key_pem = ReadWholeFile(server_key);
  if (cert_pem.ok() && key_pem.ok()) {
    cluster.server = {*std::move(key_pem), *std::move(cert_pem)};
    if (StillGood(cluster.server, cluster.ca, names)) return cluster;
  }
  if (cluster.ca.key_pem.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, " has the CA's certificate but not its key (", ca_key,
        "), so the scheduler's certificate cannot be issued: give one with --tls_cert and "
        "--tls_key"));
  }
  auto server = Issue(cluster.ca, "deja-scheduler", names, kCertValidity);
  if (!server.ok()) return server.status();
  if (absl::Status st = WritePem(server_key, server->key_pem, true); !st.ok()) return st;
  if (absl::Status st = WritePem(server_cert, server->cert_pem, false); !st.ok()) return st;
  cluster.server = *std::move(server);
  return cluster;
}

}  // namespace deja::tls
