/* placeholder until the aggregator lands */
#include <stdio.h>
int main(void) { fputs("cairn-aggregator: not built yet\n", stderr); return 2; }
