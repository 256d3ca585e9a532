// Breaks the layering on purpose: tests/layering expects this not to compile.
#include <grpcpp/grpcpp.h>
