// A reply's markdown as sanitized DOM: marked turns it into HTML (raw HTML in the reply stays
// text), DOMPurify keeps only the tags
// and attributes markdown makes and removes everything that could run or fetch (scripts, event
// handlers, javascript: links, frames, media, forms, styles, images other than data: URLs), then highlight.js colours code blocks, and each gets a copy
// button. The model's output is untrusted: a prompt-injected document can make it write HTML.
// The libraries are classic scripts loaded before this module (window.marked, DOMPurify, hljs).

const { marked, DOMPurify, hljs } = window;

marked.setOptions({ gfm: true, breaks: false, mangle: false, headerIds: false });

// Raw HTML in a reply is shown as the text it is, never parsed: the model's markup has no say in
// the page (and the sanitizer never even sees a <script> or an onerror to remove).
const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
marked.use({ renderer: { html: (html) => escapeHtml(typeof html === 'string' ? html : html.text || '') } });
hljs.configure({ hideUpgradeWarningAcceptNoSupportOrSecurityUpdates: true });  // Debian's 9.18 warns otherwise

// An allow list, not a deny list: what markdown makes, and nothing that can run, fetch or
// style itself (no media, frames, forms, SVG or MathML, no style attribute).
const PURIFY_OPTIONS = {
  ALLOWED_TAGS: ['p', 'br', 'hr', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'strong', 'em', 'b', 'i', 'u', 's', 'del', 'ins',
                 'sub', 'sup', 'mark', 'kbd', 'small', 'blockquote', 'ul', 'ol', 'li', 'dl', 'dt', 'dd', 'pre', 'code',
                 'span', 'div', 'a', 'img', 'table', 'thead', 'tbody', 'tfoot', 'tr', 'th', 'td', 'details', 'summary'],
  ALLOWED_ATTR: ['href', 'title', 'alt', 'src', 'class', 'start', 'align', 'colspan', 'rowspan'],
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

// Inside DOMPurify, before the nodes reach this document: an image whose source is not a data:
// URL loses it (an <img> made in a live document starts its fetch at once, even unattached), and
// links open elsewhere without telling where they came from. Images left without a source are
// then shown as their alt text.
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.nodeName === 'IMG') {
    const source = node.getAttribute('src') || '';
    if (!/^data:image\/(png|gif|jpeg|webp);/i.test(source)) {
      node.removeAttribute('src');
      node.setAttribute('alt', `[image: ${node.getAttribute('alt') || source}]`);
    }
  } else if (node.nodeName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

function replaceImagesWithoutSource(fragment) {
  for (const image of fragment.querySelectorAll('img:not([src])'))
    image.replaceWith(document.createTextNode(image.getAttribute('alt') || '[image]'));
}

// Languages tried when a code block names none (highlightAuto over all 180 is slow).
const AUTO_LANGUAGES = ['python', 'javascript', 'typescript', 'cpp', 'c', 'rust', 'go', 'java', 'bash', 'shell',
                        'json', 'yaml', 'xml', 'css', 'sql', 'markdown'];

function highlight(code) {
  const named = /(?:^|\s)language-([\w+#-]+)/.exec(code.className || '');
  const source = code.textContent;
  const result = named && hljs.getLanguage(named[1])
    ? hljs.highlight(named[1], source, true)
    : hljs.highlightAuto(source, AUTO_LANGUAGES);
  // highlight.js escapes the code it wraps; its spans go through the sanitizer all the same.
  code.replaceChildren(DOMPurify.sanitize(result.value, PURIFY_OPTIONS));
  code.classList.add('hljs');
}

function addCopyButton(pre, copyText) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'copy-code';
  button.textContent = 'Copy';
  const code = pre.querySelector('code') || pre;
  button.addEventListener('click', () => copyText(code.textContent, button));
  pre.prepend(button);
}

// The markdown `text` rendered into `container`. While streaming, code is not highlighted yet
// (it would be redone on every token); `final` highlights it and adds the copy buttons.
export function renderMarkdown(container, text, { final, copyText }) {
  const fragment = DOMPurify.sanitize(marked.parse(text), PURIFY_OPTIONS);
  replaceImagesWithoutSource(fragment);
  if (final) {
    for (const code of fragment.querySelectorAll('pre > code')) highlight(code);
    for (const pre of fragment.querySelectorAll('pre')) addCopyButton(pre, copyText);
  }
  container.replaceChildren(fragment);
}
