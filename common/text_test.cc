#include "common/text.h"

#include <gtest/gtest.h>

namespace fanout {
namespace {

TEST(TextTest, Utf8IsCheckedAndRepaired) {
  EXPECT_TRUE(IsUtf8("Pokémon ✓"));
  EXPECT_TRUE(IsUtf8(""));
  EXPECT_FALSE(IsUtf8("\xff"));
  EXPECT_FALSE(IsUtf8("caf\xe9"));           // Latin-1
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_EQ(ToUtf8("caf\xe9!"), "caf\xef\xbf\xbd!");
  EXPECT_EQ(ToUtf8("Pokémon"), "Pokémon");
}

TEST(TextTest, Base64AsRfc4648) {
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("f"), "Zg==");
  EXPECT_EQ(Base64("fo"), "Zm8=");
  EXPECT_EQ(Base64("foo"), "Zm9v");
  EXPECT_EQ(Base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64(std::string("\xff\x00\x01", 3)), "/wAB");
}

TEST(TextTest, EllipsizeCutsToTheWidthInCharacters) {
  EXPECT_EQ(Ellipsize("Bulbasaur", 21), "Bulbasaur");
  EXPECT_EQ(Ellipsize("abcde", 5), "abcde");
  EXPECT_EQ(Ellipsize("abcdef", 5), "abcd…");
  EXPECT_EQ(Ellipsize("éééééé", 4), "ééé…");
  EXPECT_EQ(Ellipsize("two\nlines", 20), "two lines");
  EXPECT_EQ(Ellipsize("abc", 0), "");
}

TEST(TextTest, PythonFloats) {
  EXPECT_EQ(PythonFloat(2000001.0), "2000001.0");
  EXPECT_EQ(PythonFloat(0.1), "0.1");
  EXPECT_EQ(PythonFloat(143456.789), "143456.789");
  EXPECT_EQ(PythonFloat(-3.0), "-3.0");
}

}  // namespace
}  // namespace fanout
