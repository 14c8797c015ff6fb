#include "jobs/web/html.h"

#include <gtest/gtest.h>

namespace fanout::jobs::web {
namespace {

TEST(FirstH1TextTest, NestedTagsAreFlattenedAndWhitespaceCollapsed) {
  EXPECT_EQ(FirstH1Text("<h1>Pikachu</h1>"), "Pikachu");
  EXPECT_EQ(FirstH1Text("<h1>  Pika<span>chu</span>\n <small> #025 </small>\t</h1>"),
            "Pikachu #025");
  EXPECT_EQ(FirstH1Text("<h1><a href=/x><em>Mr.</em>\n\n  Mime</a></h1>"), "Mr. Mime");
  EXPECT_EQ(FirstH1Text("<h1>Line<br>break</h1>"), "Line break");
  EXPECT_EQ(FirstH1Text("<h1>Kept<script>var x = 1;</script><style>h1{}</style></h1>"), "Kept");
  EXPECT_EQ(FirstH1Text("<h1><!-- a comment -->Text</h1>"), "Text");
}

TEST(FirstH1TextTest, EntitiesAreDecoded) {
  EXPECT_EQ(FirstH1Text("<h1>Pok&eacute;mon &#8470; 25 &amp; &lt;friends&gt;</h1>"),
            "Pokémon № 25 & <friends>");
  EXPECT_EQ(FirstH1Text("<h1>Nidoran&#x2640;</h1>"), "Nidoran♀");
  EXPECT_EQ(FirstH1Text("<h1>Farfetch&apos;d</h1>"), "Farfetch'd");
}

TEST(FirstH1TextTest, TheFirstOfSeveralAnywhereInTheDocument) {
  EXPECT_EQ(FirstH1Text("<html><body><div><section><h1>First</h1></section></div>"
                        "<h1>Second</h1></body></html>"),
            "First");
  EXPECT_EQ(FirstH1Text("<h2>Not this</h2><div><h1>Deep</h1></div><h1>Later</h1>"), "Deep");
  EXPECT_EQ(FirstH1Text("<h1></h1><h1>Second</h1>"), "");  // the first is empty, and first
}

TEST(FirstH1TextTest, NoneIsNullopt) {
  EXPECT_EQ(FirstH1Text(""), std::nullopt);
  EXPECT_EQ(FirstH1Text("<html><head><title>h1</title></head><body><p>&lt;h1&gt;</p></body>"),
            std::nullopt);
  EXPECT_EQ(FirstH1Text("plain text, not a page"), std::nullopt);
}

TEST(FirstH1TextTest, BrokenHtmlStillParsesAsABrowserWould) {
  EXPECT_EQ(FirstH1Text("<h1>Unclosed <b>bold"), "Unclosed bold");
  EXPECT_EQ(FirstH1Text("<div><h1>Stray</div> after</h1>"), "Stray");  // </div> closes it
  EXPECT_EQ(FirstH1Text("<<<h1 class=\"x>Broken attr</h1>"), std::nullopt);
  std::string deep;
  for (int i = 0; i < 3000; ++i) deep += "<div>";
  EXPECT_EQ(FirstH1Text(deep + "<h1>Deep</h1>"), "Deep");  // no stack overflow
}

TEST(FirstH1TextTest, NonUtf8BytesBecomeReplacementCharacters) {
  // "Pokémon" in Latin-1: the é is the lone byte 0xE9.
  const std::optional<std::string> text = FirstH1Text("<h1>Pok\xE9mon</h1>");
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(*text, "Pok\uFFFDmon");
  EXPECT_EQ(FirstH1Text(std::string("<h1>a\0b</h1>", 12)).has_value(), true);
}

}  // namespace
}  // namespace fanout::jobs::web
