// Building pipeline specs in tests (protos/deja/v1/pipeline.proto).
#ifndef DEJA_TESTS_FAKES_PIPELINE_SPECS_H_
#define DEJA_TESTS_FAKES_PIPELINE_SPECS_H_

#include <string>

#include "deja/v1/pipeline.pb.h"

namespace deja::testing {

// Adds the edge from.output.OUTPUT -> to.input.INPUT to `spec`.
inline void Edge(deja::v1::PipelineSpec* spec, const std::string& from, const std::string& output,
                 const std::string& to, const std::string& input) {
  auto* e = spec->add_edges();
  e->set_from_node(from);
  e->set_from_output(output);
  e->set_to_node(to);
  e->set_to_input(input);
}

}  // namespace deja::testing

#endif  // DEJA_TESTS_FAKES_PIPELINE_SPECS_H_
