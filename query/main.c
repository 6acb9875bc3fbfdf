/* placeholder until the query lands */
#include <stdio.h>
int main(void) { fputs("cairn-query: not built yet\n", stderr); return 2; }
