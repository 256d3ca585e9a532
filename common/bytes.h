// Byte counts for people: what the CLI prints and the daemons log.
#ifndef DEJA_COMMON_BYTES_H_
#define DEJA_COMMON_BYTES_H_

#include <cstdint>
#include <string>

namespace deja {

// "512 B", "1.5 KiB", "3.0 MiB", "1.2 GiB".
std::string FormatBytes(uint64_t bytes);

}  // namespace deja

#endif  // DEJA_COMMON_BYTES_H_
