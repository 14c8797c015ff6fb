#include "jobs/web/html.h"

#include <gumbo.h>

#include <memory>
#include <vector>

namespace fanout::jobs::web {
namespace {

struct OutputDeleter {
  void operator()(GumboOutput* out) const { gumbo_destroy_output(&kGumboDefaultOptions, out); }
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

// Appends `text`, folding whitespace into single spaces as it goes.
void AppendCollapsed(std::string& out, std::string_view text) {
  for (char c : text) {
    if (IsSpace(c)) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
}

// Iterative walks: a page nested ten thousand deep must not overflow a
// pool thread's stack.
const GumboNode* FindFirst(const GumboNode* root, GumboTag tag) {
  std::vector<const GumboNode*> stack = {root};
  while (!stack.empty()) {
    const GumboNode* node = stack.back();
    stack.pop_back();
    if (node->type != GUMBO_NODE_ELEMENT && node->type != GUMBO_NODE_TEMPLATE) continue;
    if (node->v.element.tag == tag) return node;
    const GumboVector& children = node->v.element.children;
    for (unsigned i = children.length; i > 0; --i) {
      stack.push_back(static_cast<const GumboNode*>(children.data[i - 1]));
    }
  }
  return nullptr;
}

std::string TextOf(const GumboNode* root) {
  std::string out;
  std::vector<const GumboNode*> stack = {root};
  while (!stack.empty()) {
    const GumboNode* node = stack.back();
    stack.pop_back();
    switch (node->type) {
      case GUMBO_NODE_TEXT:
      case GUMBO_NODE_WHITESPACE:
      case GUMBO_NODE_CDATA:
        AppendCollapsed(out, node->v.text.text);
        break;
      case GUMBO_NODE_ELEMENT:
      case GUMBO_NODE_TEMPLATE: {
        const GumboTag tag = node->v.element.tag;
        if (tag == GUMBO_TAG_SCRIPT || tag == GUMBO_TAG_STYLE) break;
        if (tag == GUMBO_TAG_BR) AppendCollapsed(out, " ");
        const GumboVector& children = node->v.element.children;
        for (unsigned i = children.length; i > 0; --i) {
          stack.push_back(static_cast<const GumboNode*>(children.data[i - 1]));
        }
        break;
      }
      default:
        break;  // comments, the document node
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::optional<std::string> FirstH1Text(std::string_view html) {
  std::unique_ptr<GumboOutput, OutputDeleter> output(
      gumbo_parse_with_options(&kGumboDefaultOptions, html.data(), html.size()));
  if (!output) return std::nullopt;
  const GumboNode* h1 = FindFirst(output->root, GUMBO_TAG_H1);
  if (h1 == nullptr) return std::nullopt;
  return TextOf(h1);
}

}  // namespace fanout::jobs::web
