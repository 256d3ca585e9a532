// common/pipeline.h's array nodes: their expansion into element nodes and
// edges, validation of gathered edges, and the directory a gather makes;
// common/array_values.h's values.
#include "common/pipeline.h"

#include "common/array_values.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/pipeline_specs.h"

namespace deja {
namespace {

using ::deja::testing::Edge;

using ::testing::ElementsAre;
using ::testing::HasSubstr;

deja::v1::PipelineNode Node(const std::string& name, const std::string& output) {
  deja::v1::PipelineNode node;
  node.set_name(name);
  for (const char* w : {"sh", "-c", "true"}) node.mutable_app()->add_command(w);
  node.add_outputs(output);
  return node;
}

// split -> score (array i: 1-3) -> merge
deja::v1::PipelineSpec FanOut() {
  deja::v1::PipelineSpec spec;
  spec.set_name("fan");
  *spec.add_nodes() = Node("split", "data.txt");
  deja::v1::PipelineNode score = Node("score", "score.txt");
  (*score.mutable_array())["i"] = "1-3";
  *spec.add_nodes() = score;
  *spec.add_nodes() = Node("merge", "all.txt");
  Edge(&spec, "split", "data.txt", "score", "data");
  Edge(&spec, "score", "score.txt", "merge", "scores");
  spec.add_force_nodes("score");
  return spec;
}

std::vector<std::string> Names(const deja::v1::PipelineSpec& spec) {
  std::vector<std::string> names;
  for (const auto& node : spec.nodes()) names.push_back(node.name());
  return names;
}

TEST(ArrayValuesTest, RangesStepsListsAndTheirProduct) {
  EXPECT_THAT(*ExpandArrayValues("f", "1-3,x,0-10:5"),
              ElementsAre("1", "2", "3", "x", "0", "5", "10"));
  EXPECT_THAT(ExpandArrayValues("f", "3-1").status().message(),
              HasSubstr("f: the range 3-1 is empty"));
  auto product = CombineArray({{{"a", "1"}}, {{"a", "2"}}}, "b", {"x", "y"}, "f", 10);
  ASSERT_TRUE(product.ok());
  EXPECT_EQ(product->size(), 4u);
  EXPECT_EQ((*product)[1], (ParamSet{{"a", "1"}, {"b", "y"}}));
  EXPECT_THAT(CombineArray({{}}, "b", {"x", "y"}, "f", 1).status().message(),
              HasSubstr("more than 1 elements"));
  EXPECT_THAT(CombineArray({{{"b", "1"}}}, "b", {"x"}, "f", 10).status().message(),
              HasSubstr("param b is given twice"));
}

TEST(ArrayNodesTest, ANodeBecomesOneNodePerElementAndItsEdgesFollow) {
  auto expanded = ExpandArrayNodes(FanOut());
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_THAT(Names(*expanded), ElementsAre("split", "score.1", "score.2", "score.3", "merge"));
  EXPECT_EQ(expanded->nodes(2).params().at("i"), "2");
  EXPECT_TRUE(expanded->nodes(2).array().empty());
  ASSERT_EQ(expanded->edges_size(), 6);
  EXPECT_EQ(expanded->edges(1).to_node(), "score.2");  // fanned out
  EXPECT_EQ(expanded->edges(1).gather_as(), "");
  EXPECT_EQ(expanded->edges(4).from_node(), "score.2");  // gathered
  EXPECT_EQ(expanded->edges(4).gather_as(), "score.2");
  EXPECT_THAT(expanded->force_nodes(), ElementsAre("score.1", "score.2", "score.3"));
  EXPECT_TRUE(ValidatePipeline(*expanded).ok()) << ValidatePipeline(*expanded);
  auto groups = EdgesInto(*expanded, "merge");
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].size(), 3u);
  // Expanding again changes nothing.
  auto again = ExpandArrayNodes(*expanded);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->SerializeAsString(), expanded->SerializeAsString());
}

TEST(ArrayNodesTest, BadArraysAndHandMadeGathersAreRefused) {
  deja::v1::PipelineSpec spec = FanOut();
  (*spec.mutable_nodes(1)->mutable_array())["i"] = "3-1";
  EXPECT_THAT(ExpandArrayNodes(spec).status().message(),
              HasSubstr("nodes[score].array[i]: the range 3-1 is empty"));
  spec = FanOut();
  (*spec.mutable_nodes(1)->mutable_params())["i"] = "0";
  EXPECT_THAT(ExpandArrayNodes(spec).status().message(),
              HasSubstr("param i is given by params and by array"));
  spec = FanOut();
  (*spec.mutable_nodes(1)->mutable_array())["i"] = "1-1001";
  EXPECT_THAT(ExpandArrayNodes(spec).status().message(), HasSubstr("more than 1000 elements"));
  spec = FanOut();
  spec.mutable_edges(1)->set_gather_as("x");
  EXPECT_THAT(ExpandArrayNodes(spec).status().message(), HasSubstr("edges[1].gather_as"));
  // Two plain edges into one input, or a plain edge beside gathered ones.
  auto expanded = ExpandArrayNodes(FanOut());
  ASSERT_TRUE(expanded.ok());
  Edge(&*expanded, "split", "data.txt", "merge", "scores");
  EXPECT_THAT(ValidatePipeline(*expanded).message(),
              HasSubstr("nodes[merge].inputs[scores]: provided by two edges"));
}

TEST(ArrayNodesTest, AGatherIsADirectoryWithOneEntryPerElement) {
  auto expanded = ExpandArrayNodes(FanOut());
  ASSERT_TRUE(expanded.ok());
  auto groups = EdgesInto(*expanded, "merge");
  std::vector<google::protobuf::RepeatedPtrField<deja::v1::OutputFile>> outputs(3);
  std::vector<const google::protobuf::RepeatedPtrField<deja::v1::OutputFile>*> pointers;
  for (int i = 0; i < 3; ++i) {
    auto* file = outputs[i].Add();
    file->set_path("score.txt");
    file->set_digest(std::string(31, '0') + static_cast<char>('1' + i));
    file->set_size(10);
    file->set_mode(0644);
    pointers.push_back(&outputs[i]);
  }
  auto input = ResolveEdges(groups[0], pointers);
  ASSERT_TRUE(input.ok()) << input.status();
  EXPECT_EQ(input->input.name(), "scores");
  EXPECT_EQ(input->input.kind(), "dir");
  EXPECT_EQ(input->input.total_bytes(), 30u);
  EXPECT_EQ(input->dir_blobs.size(), 4u);  // the root and one per element
  // One element without the file: the edge is named.
  outputs[1].Clear();
  EXPECT_THAT(ResolveEdges(groups[0], pointers).status().message(),
              HasSubstr("score.2.output.score.txt -> merge.input.scores: no output"));
}

}  // namespace
}  // namespace deja
