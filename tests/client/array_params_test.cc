// client/array_params: --array values, params files, and their product.
#include "client/array_params.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deja::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ArrayParamsTest, ValuesAreRangesWithStepsAndLists) {
  EXPECT_THAT(*ExpandArrayValues("--array i", "1-3"), ElementsAre("1", "2", "3"));
  EXPECT_THAT(*ExpandArrayValues("--array i", "0-10:5"), ElementsAre("0", "5", "10"));
  EXPECT_THAT(*ExpandArrayValues("--array i", "-2-0"), ElementsAre("-2", "-1", "0"));
  EXPECT_THAT(*ExpandArrayValues("--array s", "a,b,7-8,x-y"),
              ElementsAre("a", "b", "7", "8", "x-y"));
  EXPECT_THAT(*ExpandArrayValues("--array i", "4-4"), ElementsAre("4"));
  for (const char* bad : {"5-1", "1-5:0", "a,,b", ""}) {
    auto values = ExpandArrayValues("--array i", bad);
    EXPECT_FALSE(values.ok()) << bad;
    EXPECT_THAT(values.status().message(), HasSubstr("--array i: ")) << bad;
  }
  EXPECT_THAT(ExpandArrayValues("--array i", "1-5000000").status().message(),
              HasSubstr("more than a million"));
}

TEST(ArrayParamsTest, ArraysMakeAProductTheFirstSlowest) {
  auto elements = ArrayElements({"i=1-2", "s=x,y"}, {}, 100);
  ASSERT_TRUE(elements.ok()) << elements.status();
  ASSERT_EQ(elements->size(), 4u);
  EXPECT_EQ((*elements)[1], (ParamSet{{"i", "1"}, {"s", "y"}}));
  EXPECT_EQ((*elements)[2], (ParamSet{{"i", "2"}, {"s", "x"}}));
  EXPECT_THAT(ArrayElements({"i=1-2", "i=3"}, {}, 100).status().message(),
              HasSubstr("param i is given twice"));
  EXPECT_THAT(ArrayElements({"i=1-101"}, {}, 100).status().message(),
              HasSubstr("more than 100 elements"));
  EXPECT_THAT(ArrayElements({"novalue"}, {}, 100).status().message(), HasSubstr("--array"));
  // With a params file: each line with each value, the lines slowest.
  auto combined = ArrayElements({"k=1,2"}, {{{"s", "a"}}, {{"s", "b"}}}, 100);
  ASSERT_TRUE(combined.ok());
  EXPECT_EQ((*combined)[1], (ParamSet{{"k", "2"}, {"s", "a"}}));
  EXPECT_EQ((*combined)[2], (ParamSet{{"k", "1"}, {"s", "b"}}));
}

TEST(ArrayParamsTest, AParamsFileHasKeyValueOrJsonLines) {
  auto elements = ParseParamsFile(
      "p.txt", "# header\n a=1  b=x=y \n\n{\"a\": \"two words\", \"n\": 3, \"f\": true}\n");
  ASSERT_TRUE(elements.ok()) << elements.status();
  ASSERT_EQ(elements->size(), 2u);
  EXPECT_EQ((*elements)[0], (ParamSet{{"a", "1"}, {"b", "x=y"}}));
  EXPECT_EQ((*elements)[1], (ParamSet{{"a", "two words"}, {"f", "true"}, {"n", "3"}}));
  EXPECT_THAT(ParseParamsFile("p.txt", "a=1\nb\n").status().message(), HasSubstr("p.txt:2: "));
  EXPECT_THAT(ParseParamsFile("p.txt", "a=1 a=2\n").status().message(),
              HasSubstr("p.txt:1: param a is given twice"));
  EXPECT_THAT(ParseParamsFile("p.txt", "{\"a\": [1]}\n").status().message(),
              HasSubstr("p.txt:1: \"a\": a value must be"));
  EXPECT_THAT(ParseParamsFile("p.txt", "{oops\n").status().message(),
              HasSubstr("p.txt:1: not valid JSON"));
  EXPECT_THAT(ParseParamsFile("p.txt", "# nothing\n").status().message(),
              HasSubstr("p.txt: no params in it"));
}

TEST(ArrayParamsTest, AnArrayIdIsAnAAndDigits) {
  EXPECT_TRUE(IsArrayId("a12"));
  EXPECT_FALSE(IsArrayId("a"));
  EXPECT_FALSE(IsArrayId("j12"));
  EXPECT_FALSE(IsArrayId("a1x"));
}

}  // namespace
}  // namespace deja::cli
